//! Seed 002 devices under `/api/v1/devices` (FastAPI shapes, CONTRACT §7 visibility).

use super::views::{self, CoreDevice, DeviceRow, CORE_STATUS, DEVICE_COLUMNS, VISIBLE};
use super::{domain::DeviceError, RegisterError};
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace, Path, Query};
use crate::openapi::{tags, Detail};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetstream_events::{DeviceChanges, DeviceLifecycle, DeviceSpec, EventMetadata};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const NS: Namespace = Namespace::Core;

fn forbidden() -> ApiError {
    ApiError::detail(StatusCode::FORBIDDEN, "Not enough permissions")
}

fn not_found() -> ApiError {
    ApiError::detail(StatusCode::NOT_FOUND, "Device not found")
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

/// Seed 002 page of devices.
#[derive(Serialize, ToSchema)]
#[schema(as = CoreDevicePage)]
pub struct DevicePage {
    items: Vec<CoreDevice>,
    total: i64,
    page: i64,
    size: i64,
    pages: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateDevice {
    #[schema(value_type = crate::openapi::patterns::NotBlank)]
    pub device_uid: String,
    /// At least 3 characters once trimmed.
    #[schema(value_type = crate::openapi::patterns::Name3)]
    pub name: String,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub group_id: Option<i64>,
    #[serde(default)]
    pub owner_id: Option<i64>,
    #[serde(default)]
    pub firmware_version: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::SerialCode>)]
    pub serial_code: Option<String>,
    #[serde(default)]
    pub mac_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub hardware_id: Option<i64>,
    #[serde(default)]
    pub now_firmware_id: Option<i64>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

pub(crate) fn device_error(ns: Namespace, err: DeviceError) -> ApiError {
    match err {
        DeviceError::NotFound => ApiError::not_found(ns),
        DeviceError::AlreadyRegistered => {
            ApiError::in_namespace(ns, StatusCode::CONFLICT, "Device already registered")
        }
        DeviceError::InvalidSerialCode => ApiError::validation(
            ns,
            &["body", "serial_code"],
            "Serial code is not valid",
            "value_error",
        ),
        DeviceError::Invalid(field, msg) => {
            ApiError::validation(ns, &["body", field], msg, "value_error")
        }
    }
}

pub(crate) fn register_error(ns: Namespace, err: RegisterError) -> ApiError {
    match err {
        RegisterError::Domain(e) => device_error(ns, e),
        RegisterError::DuplicateUniqueId => ApiError::in_namespace(
            ns,
            StatusCode::CONFLICT,
            "Device with this device_uid already exists",
        ),
        RegisterError::DuplicateSerialCode => ApiError::in_namespace(
            ns,
            StatusCode::CONFLICT,
            "Device with this serial_code already exists",
        ),
        RegisterError::Other(e) => ApiError::internal(ns, e),
    }
}

async fn reload(state: &AppState, ns: Namespace, id: i64) -> Result<DeviceRow, ApiError> {
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(ns, e))?;
    views::by_id(&mut conn, id)
        .await
        .map_err(|e| ApiError::internal(ns, e))?
        .ok_or_else(|| ApiError::not_found(ns))
}

/// Managers and above.
#[utoipa::path(post, path = "/api/v1/devices", tag = tags::CORE, security(("bearer" = [])), request_body = CreateDevice,
    responses((status = 201, body = CoreDevice), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 409, description = "device_uid or serial_code already registered", body = Detail)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateDevice>,
) -> Result<Response, ApiError> {
    if !caller.is_manager() {
        return Err(forbidden());
    }
    let spec = DeviceSpec {
        unique_id: body.device_uid,
        name: body.name,
        device_type: body.device_type,
        serial_code: body.serial_code,
        mac_id: body.mac_id,
        project_id: body.project_id,
        hardware_id: body.hardware_id,
        now_firmware_id: body.now_firmware_id,
        firmware_version: body.firmware_version,
        ip_address: body.ip_address,
        group_id: body.group_id,
        owner_id: body.owner_id,
        description: body.description,
    };
    let id = super::register(&state.store, meta(&caller), spec, None)
        .await
        .map_err(|e| register_error(NS, e))?;
    let row = reload(&state, NS, id).await?;
    Ok((StatusCode::CREATED, axum::Json(row.core_json())).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number, from 1.
    #[param(minimum = 1)]
    #[serde(default)]
    pub page: Option<i64>,
    /// Page size, 1 to 100.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<i64>,
    /// The seed 002 status (`online`, `offline`, `inactive`, `maintenance`, `error`).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub group_id: Option<i64>,
}

/// The devices the caller may see (CONTRACT §7 visibility).
#[utoipa::path(get, path = "/api/v1/devices", tag = tags::CORE, security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = DevicePage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<DevicePage>, ApiError> {
    let page = q.page.unwrap_or(1);
    let size = q.size.unwrap_or(20);
    if page < 1 {
        return Err(ApiError::validation(
            NS,
            &["query", "page"],
            "Input should be greater than or equal to 1",
            "greater_than_equal",
        ));
    }
    if !(1..=100).contains(&size) {
        return Err(ApiError::validation(
            NS,
            &["query", "size"],
            "Input should be between 1 and 100",
            "value_error",
        ));
    }
    // `status` filters the seed 002 status: the lifecycle, or the connectivity of active devices.
    let filter = format!(
        "FROM devices d WHERE d.deleted_at IS NULL AND ({VISIBLE}) \
         AND ($4::text IS NULL OR ({CORE_STATUS}) = $4) \
         AND ($5::text IS NULL OR d.device_type = $5) AND ($6::bigint IS NULL OR d.group_id = $6)"
    );
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) {filter}"))
        .bind(0_i64)
        .bind(caller.account_id)
        .bind(caller.is_manager())
        .bind(&q.status)
        .bind(&q.device_type)
        .bind(q.group_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    let rows: Vec<DeviceRow> = sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} {filter} ORDER BY d.id LIMIT $7 OFFSET $1"
    ))
    .bind((page - 1).saturating_mul(size))
    .bind(caller.account_id)
    .bind(caller.is_manager())
    .bind(&q.status)
    .bind(&q.device_type)
    .bind(q.group_id)
    .bind(size)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| ApiError::internal(NS, e))?;
    let pages = (total + size - 1) / size;
    Ok(Json(DevicePage {
        items: rows.iter().map(DeviceRow::core_json).collect(),
        total,
        page,
        size,
        pages,
    }))
}

pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: i64,
    ns: Namespace,
) -> Result<DeviceRow, ApiError> {
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(ns, e))?;
    views::visible_by_id(&mut conn, id, caller.account_id, caller.is_manager())
        .await
        .map_err(|e| ApiError::internal(ns, e))?
        .ok_or_else(|| ApiError::not_found(ns))
}

#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 200, body = CoreDevice), (status = 404, description = "Device not found", body = Detail)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<CoreDevice>, ApiError> {
    let row = visible(&state, &caller, id, NS)
        .await
        .map_err(|_| not_found())?;
    Ok(Json(row.core_json()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PatchDevice {
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Name3>)]
    pub name: Option<String>,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Lifecycle>)]
    pub status: Option<String>,
    #[serde(default)]
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub group_id: Option<i64>,
    #[serde(default)]
    pub owner_id: Option<i64>,
    /// Absent leaves it as it is; `null` clears it.
    #[serde(default, deserialize_with = "fleetstream_events::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

pub(crate) fn parse_status(
    ns: Namespace,
    raw: Option<&str>,
) -> Result<Option<DeviceLifecycle>, ApiError> {
    raw.map(|s| super::domain::parse_status(s).map_err(|e| device_error(ns, e)))
        .transpose()
}

pub(crate) fn command_error(ns: Namespace, err: CommandError<DeviceError>) -> ApiError {
    match err {
        CommandError::Domain(e) => device_error(ns, e),
        CommandError::Conflict(_) => {
            ApiError::in_namespace(ns, StatusCode::CONFLICT, "Conflicting update, try again")
        }
        e => ApiError::command_failed(ns, e),
    }
}

/// Managers and above.
#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")), request_body = PatchDevice,
    responses((status = 200, body = CoreDevice), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Device not found", body = Detail)))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(body): Json<PatchDevice>,
) -> Result<Json<CoreDevice>, ApiError> {
    // Seed 002 restricts the operation by role: a plain user learns nothing about the id.
    if !caller.is_manager() {
        return Err(forbidden());
    }
    visible(&state, &caller, id, NS)
        .await
        .map_err(|_| not_found())?;
    let changes = DeviceChanges {
        name: body.name,
        device_type: body.device_type,
        status: parse_status(NS, body.status.as_deref())?,
        firmware_version: body.firmware_version,
        ip_address: body.ip_address,
        group_id: body.group_id,
        owner_id: body.owner_id,
        description: body.description,
    };
    super::update(&state.store, meta(&caller), id, changes)
        .await
        .map_err(|e| match e {
            CommandError::Domain(DeviceError::NotFound) => not_found(),
            e => command_error(NS, e),
        })?;
    Ok(Json(reload(&state, NS, id).await?.core_json()))
}

/// Soft delete; admins and above.
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Device id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Device not found", body = Detail)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !caller.is_admin() {
        return Err(forbidden());
    }
    visible(&state, &caller, id, NS)
        .await
        .map_err(|_| not_found())?;
    super::delete(&state.store, meta(&caller), id)
        .await
        .map_err(|e| match e {
            CommandError::Domain(DeviceError::NotFound) => not_found(),
            e => command_error(NS, e),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
