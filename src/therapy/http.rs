//! Seed 000/001 handlers under `/api/v1|v2/{addnox,lux}` (FastAPI `{"detail"}` shapes).

use super::service::{self, CreateRealUser, DevlogEntry, TherapyError};
use super::treatment::parse_treatment_date;
use crate::accounts::nueyne::StatusMessage;
use crate::auth::Caller;
use crate::devices::views::NueyneDevice;
use crate::devices::views::{self, iso, DeviceRow, DEVICE_COLUMNS};
use crate::http::{ApiError, Json, Namespace, Path, Query};
use crate::openapi::{tags, Detail};
use crate::routes::nueyne::AppParam;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use fleetstream_events::{
    EventMetadata, MovementSample, PatientChanges, PatientProfile, TreatmentRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

const NS: Namespace = Namespace::Nueyne;
type Reply<T> = Result<Json<T>, ApiError>;

impl From<TherapyError> for ApiError {
    fn from(err: TherapyError) -> Self {
        use TherapyError::*;
        let d = ApiError::detail;
        match err {
            NotAuthorizedUser => d(StatusCode::UNAUTHORIZED, "Not authorized user"),
            NotFoundUser => d(StatusCode::NOT_FOUND, "Not Found User"),
            RealUserNotFound => d(StatusCode::NOT_FOUND, "Real user is not found"),
            NotFoundDevice => d(StatusCode::NOT_FOUND, "Not Found Device"),
            AlreadyConnected => d(StatusCode::CONFLICT, "Already Connected Device"),
            NotConnected => d(StatusCode::CONFLICT, "Not Connected Device"),
            SerialCodeInvalid => d(StatusCode::BAD_REQUEST, "Serial code is not valid"),
            RealUserDeleteFailed => d(StatusCode::CONFLICT, "Real user delete failed"),
            Invalid(field, msg) => ApiError::validation(NS, &["body", field], msg, "value_error"),
            Conflict => d(StatusCode::CONFLICT, "Update Device Log Failed"),
            TooLarge(e) => ApiError::command_failed(NS, crate::es::CommandError::<()>::TooLarge(e)),
            Internal(e) => ApiError::internal(NS, e),
        }
    }
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, e)
}

/// A real user (patient) of seed 001.
#[derive(Debug, sqlx::FromRow, Serialize, ToSchema)]
pub struct PatientRow {
    id: i64,
    root_user_id: i64,
    first_name: String,
    last_name: String,
    birthdate: String,
    gender: String,
}

#[derive(Deserialize)]
pub struct RealUserPath {
    id: i64,
}

/// `create-real-user` reply.
#[derive(Serialize, ToSchema)]
pub struct RealUserCreated {
    real_user_id: i64,
    first_name: String,
    last_name: String,
    birthdate: String,
    gender: String,
    device_id: i64,
    now_firmware_id: Option<i64>,
    unique_id: String,
    serial_code: Option<String>,
    device_alias: Option<String>,
    last_log_file_id: i64,
    created_at: String,
}

/// A `get-all-device` row: a patient and its device (device fields null when it has none).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PatientDevice {
    id: Option<i64>,
    real_user_id: i64,
    project_id: Option<i64>,
    hardware_id: Option<i64>,
    now_firmware_id: Option<i64>,
    unique_id: Option<String>,
    serial_code: Option<String>,
    device_alias: Option<String>,
    mac_id: Option<String>,
    created_at: Option<String>,
    last_log_file_id: Option<i64>,
    root_user_id: i64,
    first_name: String,
    last_name: String,
    birthdate: String,
    gender: String,
}

/// `set-my-device` reply (the seed spells `statuscode` in lower case here).
#[derive(Serialize, ToSchema)]
pub struct Connected {
    statuscode: u16,
    message: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CheckDeviceReply {
    /// `Connection Confirmed` (paired to one of the caller's real users) or `Device Registerable`.
    #[schema(pattern = "^(Connection Confirmed|Device Registerable)$")]
    detail: &'static str,
    device_data: NueyneDevice,
}

#[derive(Serialize, ToSchema)]
pub struct DayTime {
    treatment_date: String,
    treatment_time: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DayIntensity {
    treatment_date: String,
    last_intensity: f64,
}

#[derive(Serialize, ToSchema)]
pub struct DayMovement {
    treatment_date: String,
    movement: i64,
}

/// `chart/recent`: days ascending; averages over the days with data, 0 when none.
#[derive(Serialize, ToSchema)]
pub struct ChartReply {
    treatment_time_data: Vec<DayTime>,
    treatment_intensity_data: Vec<DayIntensity>,
    movement_data: Vec<DayMovement>,
    avg_treatment_time: f64,
    avg_treatment_intensity: f64,
    avg_movement: f64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MovementSampleDoc {
    val: i64,
    /// Unix seconds.
    timestamp: i64,
}

async fn patient_row(state: &AppState, id: i64) -> Result<Option<PatientRow>, ApiError> {
    sqlx::query_as("SELECT id, root_user_id, first_name, last_name, birthdate, gender FROM patients WHERE id = $1")
        .bind(id)
        .fetch_optional(state.pool())
        .await
        .map_err(internal)
}

/// The caller's patient for read endpoints: missing or foreign → 401 `Not authorized user`.
async fn own_patient_row(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<PatientRow, ApiError> {
    match patient_row(state, id).await? {
        Some(p) if p.root_user_id == caller.account_id => Ok(p),
        _ => Err(TherapyError::NotAuthorizedUser.into()),
    }
}

// ---- seed 001: real users -------------------------------------------------------------

/// `birthdate` is `yyyymmdd`; `gender` one of `M`, `F`, `N`, `P`; `mac_id` the whole MAC or its
/// last four characters.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRealUserBody {
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[schema(value_type = crate::openapi::patterns::Birthdate)]
    birthdate: String,
    #[schema(value_type = crate::openapi::patterns::Gender)]
    gender: String,
    #[schema(value_type = crate::openapi::patterns::SerialCode)]
    serial_code: String,
    mac_id: String,
    #[serde(default)]
    unique_id: Option<String>,
}

/// Creates the real user and pairs the device in one transaction.
#[utoipa::path(post, path = "/api/v1/{app}/user/create-real-user", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = CreateRealUserBody,
    responses((status = 200, body = RealUserCreated),
        (status = 400, description = "Serial code is not valid", body = Detail),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Already Connected Device", body = Detail)))]
pub async fn create_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<CreateRealUserBody>,
) -> Reply<RealUserCreated> {
    let cmd = CreateRealUser {
        profile: PatientProfile {
            first_name: b.first_name,
            last_name: b.last_name,
            birthdate: b.birthdate,
            gender: b.gender,
        },
        serial_code: b.serial_code,
        mac_id: b.mac_id,
        unique_id: b.unique_id.filter(|u| !u.is_empty()),
    };
    let (patient_id, device) =
        service::create_real_user(&state.store, &meta(&caller), caller.account_id, &cmd).await?;
    Ok(Json(RealUserCreated {
        real_user_id: patient_id,
        first_name: cmd.profile.first_name,
        last_name: cmd.profile.last_name,
        birthdate: cmd.profile.birthdate,
        gender: cmd.profile.gender,
        device_id: device.id,
        now_firmware_id: device.now_firmware_id,
        unique_id: device.unique_id,
        serial_code: device.serial_code,
        device_alias: device.device_alias,
        last_log_file_id: device.last_log_file_id,
        created_at: iso(device.created_at),
    }))
}

/// The same operation under `/api/v2`.
#[utoipa::path(post, path = "/api/v2/{app}/user/create-real-user", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = CreateRealUserBody,
    responses((status = 200, body = RealUserCreated),
        (status = 400, description = "Serial code is not valid", body = Detail),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Already Connected Device", body = Detail)))]
pub async fn create_real_user_v2(
    state: State<AppState>,
    caller: Caller,
    body: Json<CreateRealUserBody>,
) -> Reply<RealUserCreated> {
    create_real_user(state, caller, body).await
}

/// Seed 001 read rule: missing → 404 `Real user is not found`, foreign → 401.
async fn readable_patient(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<PatientRow, ApiError> {
    match patient_row(state, id).await? {
        None => Err(TherapyError::RealUserNotFound.into()),
        Some(p) if p.root_user_id != caller.account_id => {
            Err(TherapyError::NotAuthorizedUser.into())
        }
        Some(p) => Ok(p),
    }
}

#[utoipa::path(get, path = "/api/v1/{app}/user/real-user/{id}", tag = tags::NUEYNE,
    params(AppParam, ("id" = i64, Path, description = "The real user's id")),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = PatientRow),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Real user is not found", body = Detail)))]
pub async fn get_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(RealUserPath { id }): Path<RealUserPath>,
) -> Reply<PatientRow> {
    Ok(Json(readable_patient(&state, &caller, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRealUserBody {
    /// The real user's id (required by `update-real-user`; the path's id wins on
    /// `real-user/{id}`).
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Birthdate>)]
    birthdate: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Gender>)]
    gender: Option<String>,
}

/// The body of `update-real-user`: [`UpdateRealUserBody`] with its `id` required.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateRealUserById {
    /// The real user's id.
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    #[schema(value_type = Option<crate::openapi::patterns::Birthdate>)]
    birthdate: Option<String>,
    #[schema(value_type = Option<crate::openapi::patterns::Gender>)]
    gender: Option<String>,
}

async fn update_real_user_inner(
    state: &AppState,
    caller: &Caller,
    id: i64,
    b: UpdateRealUserBody,
) -> Reply<PatientRow> {
    let changes = PatientChanges {
        first_name: b.first_name,
        last_name: b.last_name,
        birthdate: b.birthdate,
        gender: b.gender,
    };
    service::update_patient(&state.store, meta(caller), caller.account_id, id, changes).await?;
    Ok(Json(readable_patient(state, caller, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/{app}/user/real-user/{id}", tag = tags::NUEYNE,
    params(AppParam, ("id" = i64, Path, description = "The real user's id")),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = UpdateRealUserBody,
    responses((status = 200, body = PatientRow),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Real user is not found", body = Detail)))]
pub async fn patch_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(RealUserPath { id }): Path<RealUserPath>,
    Json(b): Json<UpdateRealUserBody>,
) -> Reply<PatientRow> {
    update_real_user_inner(&state, &caller, id, b).await
}

#[utoipa::path(patch, path = "/api/v1/{app}/user/update-real-user", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = UpdateRealUserById,
    responses((status = 200, body = PatientRow),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Real user is not found", body = Detail)))]
pub async fn update_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<UpdateRealUserBody>,
) -> Reply<PatientRow> {
    let Some(id) = b.id else {
        return Err(ApiError::validation(
            NS,
            &["body", "id"],
            "Field required",
            "missing",
        ));
    };
    update_real_user_inner(&state, &caller, id, b).await
}

#[derive(Debug, Deserialize, Default, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct DeleteRealUserParams {
    /// Required here or in the body.
    #[serde(default)]
    #[param(required = true)]
    real_user_id: Option<i64>,
    /// Required here or in the body.
    #[serde(default)]
    #[param(required = true)]
    unique_id: Option<String>,
}

/// Deletes the real user and releases its device. Takes its two values as query parameters or
/// a JSON body (CONTRACT §7); both are required from one or the other.
#[utoipa::path(delete, path = "/api/v1/{app}/user/delete-real-user", tag = tags::NUEYNE,
    params(AppParam, DeleteRealUserParams),
    security(("bearer" = []), ("nueyne_form" = [])),
    request_body(content = Option<DeleteRealUserParams>, description = "The same values as a JSON body"),
    responses((status = 200, body = StatusMessage),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Real user is not found", body = Detail),
        (status = 409, description = "Real user delete failed / Not Connected Device", body = Detail)))]
pub async fn delete_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DeleteRealUserParams>,
    Json(body): Json<Option<DeleteRealUserParams>>,
) -> Reply<StatusMessage> {
    let body = body.unwrap_or_default();
    let real_user_id = q.real_user_id.or(body.real_user_id);
    let unique_id = q.unique_id.or(body.unique_id);
    let Some(real_user_id) = real_user_id else {
        return Err(ApiError::validation(
            NS,
            &["query", "real_user_id"],
            "Field required",
            "missing",
        ));
    };
    let Some(unique_id) = unique_id else {
        return Err(ApiError::validation(
            NS,
            &["query", "unique_id"],
            "Field required",
            "missing",
        ));
    };
    service::delete_real_user(
        &state.store,
        &meta(&caller),
        caller.account_id,
        real_user_id,
        &unique_id,
    )
    .await?;
    Ok(Json(StatusMessage::ok("Real user deleted successfully")))
}

// ---- seed 000: devices ------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RealUserParam {
    real_user_id: i64,
}

/// The device of one of the caller's real users.
#[utoipa::path(get, path = "/api/v1/{app}/device/child-device", tag = tags::NUEYNE, params(AppParam, RealUserParam),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = NueyneDevice),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Device not found", body = Detail)))]
pub async fn child_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RealUserParam>,
) -> Reply<NueyneDevice> {
    own_patient_row(&state, &caller, q.real_user_id).await?;
    let row: Option<DeviceRow> = sqlx::query_as(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE real_user_id = $1 AND deleted_at IS NULL"
    ))
    .bind(q.real_user_id)
    .fetch_optional(state.pool())
    .await
    .map_err(internal)?;
    let row = row.ok_or_else(|| ApiError::detail(StatusCode::NOT_FOUND, "Device not found"))?;
    Ok(Json(row.nueyne_json()))
}

/// CONTRACT §4: one row per patient of the caller, device fields null when it holds none.
pub const GET_ALL_DEVICE_SQL: &str = include_str!("get_all_device.sql");

#[utoipa::path(get, path = "/api/v1/{app}/device/get-all-device", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = Vec<PatientDevice>)))]
pub async fn get_all_device(State(state): State<AppState>, caller: Caller) -> Reply<Value> {
    let rows: Vec<(Value,)> = sqlx::query_as(GET_ALL_DEVICE_SQL)
        .bind(caller.account_id)
        .fetch_all(state.pool())
        .await
        .map_err(internal)?;
    Ok(Json(Value::Array(rows.into_iter().map(|r| r.0).collect())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SetMyDeviceParams {
    serial_code: String,
    mac_id: String,
    real_user_id: i64,
}

/// Pairs a device (found by serial code and MAC) with one of the caller's real users.
#[utoipa::path(post, path = "/api/v1/{app}/device/set-my-device", tag = tags::NUEYNE, params(AppParam, SetMyDeviceParams),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = Connected),
        (status = 400, description = "Serial code is not valid", body = Detail),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Already Connected Device", body = Detail)))]
pub async fn set_my_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SetMyDeviceParams>,
) -> Reply<Connected> {
    service::set_my_device(
        &state.store,
        &meta(&caller),
        caller.account_id,
        q.real_user_id,
        &q.serial_code,
        &q.mac_id,
    )
    .await?;
    Ok(Json(Connected {
        statuscode: 200,
        message: "device connected",
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnConnectParams {
    unique_id: String,
    real_user_id: i64,
}

#[utoipa::path(patch, path = "/api/v1/{app}/device/un-connect", tag = tags::NUEYNE, params(AppParam, UnConnectParams),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = StatusMessage),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device", body = Detail)))]
pub async fn un_connect(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UnConnectParams>,
) -> Reply<StatusMessage> {
    service::un_connect(
        &state.store,
        &meta(&caller),
        caller.account_id,
        q.real_user_id,
        &q.unique_id,
    )
    .await?;
    Ok(Json(StatusMessage::ok("device unconnected")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckDeviceParams {
    unique_id: String,
}

/// Whether a device can be paired, before pairing it.
#[utoipa::path(get, path = "/api/v1/{app}/device/check-device", tag = tags::NUEYNE, params(AppParam, CheckDeviceParams),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = CheckDeviceReply),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Already Connected Device", body = Detail)))]
pub async fn check_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CheckDeviceParams>,
) -> Reply<CheckDeviceReply> {
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let device = views::by_unique_id(&mut conn, &q.unique_id)
        .await
        .map_err(internal)?
        .ok_or(TherapyError::NotFoundDevice)?;
    let detail = match device.real_user_id {
        None => "Device Registerable",
        Some(patient) => {
            let mine: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1 AND root_user_id = $2)",
            )
            .bind(patient)
            .bind(caller.account_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(internal)?;
            if !mine {
                return Err(TherapyError::AlreadyConnected.into());
            }
            "Connection Confirmed"
        }
    };
    Ok(Json(CheckDeviceReply {
        detail,
        device_data: device.nueyne_json(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateAliasBody {
    device_id: i64,
    real_user_id: i64,
    device_alias: String,
}

#[utoipa::path(patch, path = "/api/v1/{app}/device/update-alias", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = UpdateAliasBody,
    responses((status = 200, body = NueyneDevice),
        (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device", body = Detail)))]
pub async fn update_alias(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<UpdateAliasBody>,
) -> Reply<NueyneDevice> {
    let row = service::update_alias(
        &state.store,
        &meta(&caller),
        caller.account_id,
        b.real_user_id,
        b.device_id,
        &b.device_alias,
    )
    .await?;
    Ok(Json(row.nueyne_json()))
}

/// A device's log text travels inside its treatment event; it must leave room for the rest.
const MAX_LOG_DATA_BYTES: usize = 192 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
pub struct DetailData {
    /// ISO 8601 local time, e.g. `2024-12-05T14:06:47` (an offset is converted to UTC).
    #[schema(value_type = TreatmentDate)]
    treatment_date: String,
    #[serde(default)]
    movement: Option<i64>,
    /// 1–6, or null for a temporary record; v1 sends a string ("2"), v2 an integer.
    #[serde(default)]
    #[schema(value_type = Option<FinishFlag>)]
    finish_flag: Option<Value>,
    last_intensity: i64,
    treatment_time: i64,
    #[serde(default)]
    log_data: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DevlogItem {
    real_user_id: i64,
    device_id: i64,
    #[serde(default)]
    unique_id: Option<String>,
    detail_data: DetailData,
    #[serde(default)]
    log_file_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DevlogV2 {
    log_arrays: Vec<DevlogItem>,
}

fn finish_flag(raw: Option<&Value>, i: usize) -> Result<Option<i64>, ApiError> {
    let bad = || {
        ApiError::validation(
            NS,
            &["body", &i.to_string(), "detail_data", "finish_flag"],
            "finish_flag must be 1-6 or null",
            "value_error",
        )
    };
    let flag = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if (1..=6).contains(&flag) {
        Ok(Some(flag))
    } else {
        Err(bad())
    }
}

fn entries(items: Vec<DevlogItem>) -> Result<Vec<DevlogEntry>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let d = item.detail_data;
            let treatment_date = parse_treatment_date(&d.treatment_date).ok_or_else(|| {
                ApiError::validation(
                    NS,
                    &["body", &i.to_string(), "detail_data", "treatment_date"],
                    "Input should be a valid datetime",
                    "datetime_parsing",
                )
            })?;
            if d.log_data
                .as_ref()
                .is_some_and(|s| s.len() > MAX_LOG_DATA_BYTES)
            {
                return Err(ApiError::validation(
                    NS,
                    &["body", &i.to_string(), "detail_data", "log_data"],
                    format!("String should have at most {MAX_LOG_DATA_BYTES} characters"),
                    "string_too_long",
                ));
            }
            Ok(DevlogEntry {
                device_id: item.device_id,
                unique_id: item.unique_id,
                record: TreatmentRecord {
                    real_user_id: item.real_user_id,
                    treatment_date,
                    last_intensity: d.last_intensity,
                    treatment_time: d.treatment_time,
                    movement: d.movement.unwrap_or(0),
                    finish_flag: finish_flag(d.finish_flag.as_ref(), i)?,
                    log_file_id: item.log_file_id,
                    log_data: d.log_data,
                },
            })
        })
        .collect()
}

async fn save_devlog(
    state: &AppState,
    caller: &Caller,
    items: Vec<DevlogItem>,
) -> Reply<StatusMessage> {
    let entries = entries(items)?;
    let finished =
        service::upload_devlog(&state.store, &meta(caller), caller.account_id, &entries).await?;
    let message = if finished || entries.is_empty() {
        "Devlog saved successfully"
    } else {
        "Temp devlog saved successfully"
    };
    Ok(Json(StatusMessage::ok(message)))
}

/// Addnox v1: a bare array of logs, one transaction.
#[utoipa::path(post, path = "/api/v1/addnox/device/devlog", tag = tags::NUEYNE,
    security(("bearer" = []), ("nueyne_form" = [])), request_body = Vec<DevlogItem>,
    responses((status = 200, body = StatusMessage), (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found User / Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device", body = Detail)))]
pub async fn devlog_v1_addnox(
    State(state): State<AppState>,
    caller: Caller,
    Json(items): Json<Vec<DevlogItem>>,
) -> Reply<StatusMessage> {
    save_devlog(&state, &caller, items).await
}

/// The Lux app sends the v2 `{log_arrays}` body on its v1 path.
#[utoipa::path(post, path = "/api/v1/lux/device/devlog", tag = tags::NUEYNE,
    security(("bearer" = []), ("nueyne_form" = [])), request_body = DevlogV2,
    responses((status = 200, body = StatusMessage), (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found User / Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device", body = Detail)))]
pub async fn devlog_v1_lux(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<DevlogV2>,
) -> Reply<StatusMessage> {
    save_devlog(&state, &caller, body.log_arrays).await
}

/// `finish_flag` null starts or updates the temporary record (`Temp devlog saved
/// successfully`); 1–6 completes it, the rest are new logs (`Devlog saved successfully`).
#[utoipa::path(post, path = "/api/v2/{app}/device/devlog", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = DevlogV2,
    responses((status = 200, body = StatusMessage), (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found User / Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device / Update Device Log Failed", body = Detail)))]
pub async fn devlog_v2(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<DevlogV2>,
) -> Reply<StatusMessage> {
    save_devlog(&state, &caller, body.log_arrays).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MovementBody {
    real_user_id: i64,
    device_id: i64,
    #[schema(value_type = Vec<MovementSampleDoc>)]
    movement_data: Vec<MovementSample>,
}

#[utoipa::path(post, path = "/api/v1/{app}/device/movement", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = MovementBody,
    responses((status = 200, body = StatusMessage), (status = 401, description = "Not authorized user", body = Detail),
        (status = 404, description = "Not Found User / Not Found Device", body = Detail),
        (status = 409, description = "Not Connected Device", body = Detail)))]
pub async fn movement(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<MovementBody>,
) -> Reply<StatusMessage> {
    service::record_movement(
        &state.store,
        &meta(&caller),
        caller.account_id,
        b.real_user_id,
        b.device_id,
        &b.movement_data,
    )
    .await?;
    Ok(Json(StatusMessage::ok("Movement log saved successfully")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChartParams {
    real_user_id: i64,
    /// 0 = the 7 days, 1 = the 30 days ending on `current_date`.
    #[param(minimum = 0, maximum = 1)]
    select_mode: i64,
    /// `yyyy-mm-dd`, or a date-time whose date is taken.
    #[param(value_type = CurrentDate, inline)]
    current_date: String,
}

/// Per day: summed treatment time and movement, mean intensity.
#[utoipa::path(get, path = "/api/v1/{app}/chart/recent", tag = tags::NUEYNE, params(AppParam, ChartParams),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = ChartReply),
        (status = 400, description = "Invalid mode", body = Detail),
        (status = 401, description = "Not authorized user", body = Detail)))]
pub async fn chart_recent(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ChartParams>,
) -> Reply<ChartReply> {
    let days = match q.select_mode {
        0 => 7,
        1 => 30,
        _ => {
            return Err(ApiError::detail(
                StatusCode::BAD_REQUEST,
                "Invalid mode. Use 0 for recent 7 days or 1 for recent 30 days",
            ))
        }
    };
    let end = parse_current_date(&q.current_date).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["query", "current_date"],
            "Input should be a valid date",
            "date_parsing",
        )
    })?;
    own_patient_row(&state, &caller, q.real_user_id).await?;
    let start = end - chrono::Duration::days(days - 1);
    let rows: Vec<(NaiveDate, i64, f64, i64)> = sqlx::query_as(include_str!("chart_recent.sql"))
        .bind(q.real_user_id)
        .bind(start)
        .bind(end)
        .fetch_all(state.pool())
        .await
        .map_err(internal)?;
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    let n = rows.len().max(1) as f64;
    let (mut time_sum, mut intensity_sum, mut movement_sum) = (0i64, 0f64, 0i64);
    let mut time_data = Vec::new();
    let mut intensity_data = Vec::new();
    let mut movement_data = Vec::new();
    for (day, time, intensity, movement) in &rows {
        let day = day.format("%Y-%m-%d").to_string();
        time_sum += time;
        intensity_sum += round1(*intensity);
        movement_sum += movement;
        time_data.push(DayTime {
            treatment_date: day.clone(),
            treatment_time: *time,
        });
        intensity_data.push(DayIntensity {
            treatment_date: day.clone(),
            last_intensity: round1(*intensity),
        });
        movement_data.push(DayMovement {
            treatment_date: day,
            movement: *movement,
        });
    }
    Ok(Json(ChartReply {
        treatment_time_data: time_data,
        treatment_intensity_data: intensity_data,
        movement_data,
        avg_treatment_time: round1(time_sum as f64 / n),
        avg_treatment_intensity: round1(intensity_sum / n),
        avg_movement: round1(movement_sum as f64 / n),
    }))
}

/// `finish_flag` as the apps send it: 1–6 as an integer or a string, or null / "".
pub struct FinishFlag;

impl utoipa::PartialSchema for FinishFlag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(serde_json::json!({
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": 6},
                {"type": "string", "pattern": "^\\s*([1-6]|)\\s*$"}
            ]
        }))
    }
}

impl ToSchema for FinishFlag {}

/// `current_date` as the app sends it: a date, or a date-time (its date is the day).
fn parse_current_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_treatment_date(raw).map(|t| t.date()))
}

/// A treatment date: RFC 3339, or an ISO 8601 local date-time without an offset.
pub struct TreatmentDate;

impl utoipa::PartialSchema for TreatmentDate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(serde_json::json!({
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": LOCAL_DATE_TIME}
            ]
        }))
    }
}

impl ToSchema for TreatmentDate {}

/// `yyyy-mm-dd` or a date-time.
pub struct CurrentDate;

impl utoipa::PartialSchema for CurrentDate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(serde_json::json!({
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"}
            ]
        }))
    }
}

impl ToSchema for CurrentDate {}

/// A local date-time `yyyy-mm-ddThh:mm:ss[.f]` (also with a space), days 01–28 so every match
/// is a real date; the server takes any real one.
const LOCAL_DATE_TIME: &str =
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?$";
