//! Seed 004 devices under `/api/devices/` (Django REST framework shapes): page-number
//! pagination with absolute `next`/`previous` links, field-map validation, manager-only writes.
//! Commands, validation and the read model are the registry's own (`super`, `domain`, `views`).

use super::domain::{self, DeviceError};
use super::views::{self, DeviceRow, DrfDevice};
use super::RegisterError;
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace, Path, Query};
use crate::openapi::{tags, DrfError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use fleetstream_events::{DeviceChanges, DeviceSpec, EventMetadata};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const NS: Namespace = Namespace::Drf;
const DEFAULT_PAGE_SIZE: i64 = 20;
const MAX_PAGE_SIZE: i64 = 100;

fn forbidden() -> ApiError {
    ApiError::detail(
        StatusCode::FORBIDDEN,
        "You do not have permission to perform this action.",
    )
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

/// DRF checks the permission before looking the object up: writes are for managers and above.
fn require_manager(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_manager() {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// DRF page-number pagination. Both are strings as Django reads them: a `page` that is not a
/// page number (or `last`) is 404 `Invalid page.`; a bad `page_size` falls back to 20.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number from 1, or `last`.
    #[serde(default)]
    pub page: Option<String>,
    /// Items per page (default 20, at most 100).
    #[serde(default)]
    pub page_size: Option<String>,
}

/// A DRF page of devices with absolute `next`/`previous` links.
#[derive(Serialize, ToSchema)]
#[schema(as = DrfDevicePage)]
pub struct DevicePage {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<DrfDevice>,
}

/// DRF `PageNumberPagination`: a bad `page_size` falls back to the default, a large one is
/// capped; a page that is not a number (or `last`) or is out of range is 404 `Invalid page.`.
fn page_params(q: &PageQuery, count: i64) -> Result<(i64, i64), ApiError> {
    let size = q
        .page_size
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
    let pages = ((count + size - 1) / size).max(1);
    let page = match q.page.as_deref().map(str::trim) {
        None => 1,
        Some("last") => pages,
        Some(raw) => raw.parse::<i64>().unwrap_or(0),
    };
    if !(1..=pages).contains(&page) {
        return Err(ApiError::detail(StatusCode::NOT_FOUND, "Invalid page."));
    }
    Ok((page, size))
}

/// The request's absolute URL with `page` set (or removed), other parameters kept, keys
/// sorted as Django's `replace_query_param` does.
fn page_link(headers: &HeaderMap, uri: &Uri, page: Option<i64>) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        params
            .entry(k.into_owned())
            .or_default()
            .push(v.into_owned());
    }
    match page {
        Some(n) => {
            params.insert("page".to_owned(), vec![n.to_string()]);
        }
        None => {
            params.remove("page");
        }
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, values) in &params {
        for v in values {
            query.append_pair(k, v);
        }
    }
    let query = query.finish();
    let path = uri.path();
    if query.is_empty() {
        format!("http://{host}{path}")
    } else {
        format!("http://{host}{path}?{query}")
    }
}

/// The devices the caller may see (CONTRACT §7 visibility), 20 a page.
#[utoipa::path(get, path = "/api/devices/", tag = tags::DRF, security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = DevicePage), (status = 404, description = "Invalid page.", body = DrfError)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Result<Json<DevicePage>, ApiError> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let count = views::count_visible(&mut conn, caller.account_id, caller.is_manager())
        .await
        .map_err(internal)?;
    let (page, size) = page_params(&q, count)?;
    let rows = views::page_visible(
        &mut conn,
        caller.account_id,
        caller.is_manager(),
        (page - 1) * size,
        size,
    )
    .await
    .map_err(internal)?;
    let next = (page * size < count).then(|| page_link(&headers, &uri, Some(page + 1)));
    let previous = (page > 1).then(|| {
        let target = (page > 2).then_some(page - 1);
        page_link(&headers, &uri, target)
    });
    Ok(Json(DevicePage {
        count,
        next,
        previous,
        results: rows.iter().map(DeviceRow::drf_json).collect(),
    }))
}

#[utoipa::path(get, path = "/api/devices/{id}/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = DrfDevice), (status = 404, description = "Not found.", body = DrfError)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<DrfDevice>, ApiError> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let row = views::visible_by_id(&mut conn, id, caller.account_id, caller.is_manager())
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(NS))?;
    Ok(Json(row.drf_json()))
}

/// Writable fields of seed 004; `id`, `public_id`, `created_at`, `updated_at` and anything
/// else sent are ignored (read-only).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeviceBody {
    /// At least 3 characters after trimming; required by POST and PUT.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Name3>)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Lifecycle>)]
    pub status: Option<String>,
    /// Absent leaves it as it is; `null` clears it.
    #[serde(default, deserialize_with = "fleetstream_events::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Read on POST only (see [`DrfDeviceWrite`]); PUT and PATCH leave it as it is.
    #[serde(default)]
    pub device_uid: Option<String>,
}

/// The body of POST, where `name` is required (documentation of [`DeviceBody`]).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DrfDeviceWrite {
    /// At least 3 characters after trimming.
    #[schema(value_type = crate::openapi::patterns::Name3)]
    name: String,
    #[schema(value_type = Option<crate::openapi::patterns::Lifecycle>)]
    status: Option<String>,
    description: Option<String>,
    /// The device's own id; a fresh UUID when not sent.
    #[schema(value_type = Option<crate::openapi::patterns::NotBlank>)]
    device_uid: Option<String>,
}

/// The body of PUT: a full update, so `name` is required; `device_uid` is not changed.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DrfDeviceReplace {
    /// At least 3 characters after trimming.
    #[schema(value_type = crate::openapi::patterns::Name3)]
    name: String,
    #[schema(value_type = Option<crate::openapi::patterns::Lifecycle>)]
    status: Option<String>,
    description: Option<String>,
    /// Ignored.
    device_uid: Option<String>,
}

/// Validated writable fields; every field error is reported at once, as DRF does.
struct Valid {
    name: Option<String>,
    status: Option<fleetstream_events::DeviceLifecycle>,
}

fn validate(body: &DeviceBody, name_required: bool) -> Result<Valid, ApiError> {
    let mut errors = Map::new();
    let mut field_error = |err: DeviceError| {
        if let DeviceError::Invalid(field, msg) = err {
            errors.insert(field.to_owned(), json!([msg]));
        }
    };
    let name = match body.name.as_deref() {
        None if name_required => {
            field_error(DeviceError::Invalid("name", "This field is required."));
            None
        }
        None => None,
        Some(raw) => domain::normalize_name(raw).map_err(&mut field_error).ok(),
    };
    let status = match body.status.as_deref() {
        None => None,
        Some(raw) => domain::parse_status(raw).map_err(&mut field_error).ok(),
    };
    if errors.is_empty() {
        Ok(Valid { name, status })
    } else {
        Err(ApiError::with_body(
            StatusCode::BAD_REQUEST,
            Value::Object(errors),
        ))
    }
}

fn device_error(err: DeviceError) -> ApiError {
    match err {
        DeviceError::NotFound => ApiError::not_found(NS),
        DeviceError::Invalid(field, msg) => ApiError::validation(NS, &[field], msg, "invalid"),
        other => super::core_http::device_error(NS, other),
    }
}

fn command_error(err: CommandError<DeviceError>) -> ApiError {
    match err {
        CommandError::Domain(e) => device_error(e),
        CommandError::Conflict(_) => super::core_http::command_error(NS, err),
        e => ApiError::command_failed(NS, e),
    }
}

async fn reload(state: &AppState, id: i64) -> Result<DeviceRow, ApiError> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    views::by_id(&mut conn, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(NS))
}

/// Managers and above.
#[utoipa::path(post, path = "/api/devices/", tag = tags::DRF, security(("bearer" = [])), request_body = DrfDeviceWrite,
    responses((status = 201, body = DrfDevice), (status = 403, description = "You do not have permission to perform this action.", body = DrfError)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Option<DeviceBody>>,
) -> Result<Response, ApiError> {
    require_manager(&caller)?;
    let body = body.unwrap_or_default();
    let valid = validate(&body, true)?;
    // The registry needs a device_uid; a client that sends none gets a fresh UUID.
    let unique_id = body
        .device_uid
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let spec = DeviceSpec {
        unique_id,
        name: valid.name.unwrap_or_default(),
        description: body.description.flatten(),
        ..Default::default()
    };
    let id = super::register(&state.store, meta(&caller), spec, valid.status)
        .await
        .map_err(|err| match err {
            RegisterError::Domain(e) => device_error(e),
            RegisterError::DuplicateUniqueId => ApiError::validation(
                NS,
                &["device_uid"],
                "device with this device uid already exists.",
                "unique",
            ),
            other => super::core_http::register_error(NS, other),
        })?;
    let row = reload(&state, id).await?;
    Ok((StatusCode::CREATED, axum::Json(row.drf_json())).into_response())
}

async fn write(
    state: AppState,
    caller: Caller,
    id: i64,
    body: DeviceBody,
    name_required: bool,
) -> Result<Json<DrfDevice>, ApiError> {
    require_manager(&caller)?;
    reload(&state, id).await?;
    let valid = validate(&body, name_required)?;
    let changes = DeviceChanges {
        name: valid.name,
        status: valid.status,
        description: body.description,
        ..Default::default()
    };
    super::update(&state.store, meta(&caller), id, changes)
        .await
        .map_err(command_error)?;
    Ok(Json(reload(&state, id).await?.drf_json()))
}

/// A full update, so `name` is required; managers and above.
#[utoipa::path(put, path = "/api/devices/{id}/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")), request_body = DrfDeviceReplace,
    responses((status = 200, body = DrfDevice), (status = 403, description = "You do not have permission to perform this action.", body = DrfError),
        (status = 404, description = "Not found.", body = DrfError)))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<Option<DeviceBody>>,
) -> Result<Json<DrfDevice>, ApiError> {
    write(state, caller, id, body.unwrap_or_default(), true).await
}

/// Managers and above; `description: null` clears it; no body changes nothing.
#[utoipa::path(patch, path = "/api/devices/{id}/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")), request_body(content = Option<DeviceBody>),
    responses((status = 200, body = DrfDevice), (status = 403, description = "You do not have permission to perform this action.", body = DrfError),
        (status = 404, description = "Not found.", body = DrfError)))]
pub async fn partial_update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<Option<DeviceBody>>,
) -> Result<Json<DrfDevice>, ApiError> {
    write(state, caller, id, body.unwrap_or_default(), false).await
}

/// Soft delete; managers and above.
#[utoipa::path(delete, path = "/api/devices/{id}/", tag = tags::DRF, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "You do not have permission to perform this action.", body = DrfError),
        (status = 404, description = "Not found.", body = DrfError)))]
pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    require_manager(&caller)?;
    super::delete(&state.store, meta(&caller), id)
        .await
        .map_err(command_error)?;
    Ok(StatusCode::NO_CONTENT)
}
