//! Seed 000/001 handlers under `/api/v1|v2/{addnox,lux}` (FastAPI `{"detail"}` shapes).

use super::service::{self, CreateRealUser, DevlogEntry, TherapyError};
use super::treatment::parse_treatment_date;
use crate::auth::Caller;
use crate::devices::views::{self, iso, DeviceRow, DEVICE_COLUMNS};
use crate::http::{ApiError, Json, Namespace, Query};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use fleetstream_events::{
    EventMetadata, MovementSample, PatientChanges, PatientProfile, TreatmentRecord,
};
use serde::Deserialize;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Nueyne;
type Reply = Result<Json<Value>, ApiError>;

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

#[derive(Debug, sqlx::FromRow)]
struct PatientRow {
    id: i64,
    root_user_id: i64,
    first_name: String,
    last_name: String,
    birthdate: String,
    gender: String,
}

impl PatientRow {
    fn json(&self) -> Value {
        json!({"id": self.id, "root_user_id": self.root_user_id, "first_name": self.first_name,
               "last_name": self.last_name, "birthdate": self.birthdate, "gender": self.gender})
    }
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

#[derive(Debug, Deserialize)]
pub struct CreateRealUserBody {
    first_name: String,
    #[serde(default)]
    last_name: String,
    birthdate: String,
    gender: String,
    serial_code: String,
    mac_id: String,
    #[serde(default)]
    unique_id: Option<String>,
}

pub async fn create_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<CreateRealUserBody>,
) -> Reply {
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
    Ok(Json(json!({
        "real_user_id": patient_id,
        "first_name": cmd.profile.first_name,
        "last_name": cmd.profile.last_name,
        "birthdate": cmd.profile.birthdate,
        "gender": cmd.profile.gender,
        "device_id": device.id,
        "now_firmware_id": device.now_firmware_id,
        "unique_id": device.unique_id,
        "serial_code": device.serial_code,
        "device_alias": device.device_alias,
        "last_log_file_id": device.last_log_file_id,
        "created_at": iso(device.created_at),
    })))
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

pub async fn get_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Reply {
    Ok(Json(readable_patient(&state, &caller, id).await?.json()))
}

#[derive(Debug, Deserialize)]
pub struct UpdateRealUserBody {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    birthdate: Option<String>,
    #[serde(default)]
    gender: Option<String>,
}

async fn update_real_user_inner(
    state: &AppState,
    caller: &Caller,
    id: i64,
    b: UpdateRealUserBody,
) -> Reply {
    let changes = PatientChanges {
        first_name: b.first_name,
        last_name: b.last_name,
        birthdate: b.birthdate,
        gender: b.gender,
    };
    service::update_patient(&state.store, meta(caller), caller.account_id, id, changes).await?;
    Ok(Json(readable_patient(state, caller, id).await?.json()))
}

pub async fn patch_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(b): Json<UpdateRealUserBody>,
) -> Reply {
    update_real_user_inner(&state, &caller, id, b).await
}

pub async fn update_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<UpdateRealUserBody>,
) -> Reply {
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

#[derive(Debug, Deserialize, Default)]
pub struct DeleteRealUserParams {
    #[serde(default)]
    real_user_id: Option<i64>,
    #[serde(default)]
    unique_id: Option<String>,
}

/// Takes its two values as query parameters or a JSON body (CONTRACT §7).
pub async fn delete_real_user(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DeleteRealUserParams>,
    Json(body): Json<Option<DeleteRealUserParams>>,
) -> Reply {
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
    Ok(Json(
        json!({"statusCode": 200, "message": "Real user deleted successfully"}),
    ))
}

// ---- seed 000: devices ------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct RealUserParam {
    real_user_id: i64,
}

pub async fn child_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RealUserParam>,
) -> Reply {
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

pub async fn get_all_device(State(state): State<AppState>, caller: Caller) -> Reply {
    let rows: Vec<(Value,)> = sqlx::query_as(GET_ALL_DEVICE_SQL)
        .bind(caller.account_id)
        .fetch_all(state.pool())
        .await
        .map_err(internal)?;
    Ok(Json(Value::Array(rows.into_iter().map(|r| r.0).collect())))
}

#[derive(Debug, Deserialize)]
pub struct SetMyDeviceParams {
    serial_code: String,
    mac_id: String,
    real_user_id: i64,
}

pub async fn set_my_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SetMyDeviceParams>,
) -> Reply {
    service::set_my_device(
        &state.store,
        &meta(&caller),
        caller.account_id,
        q.real_user_id,
        &q.serial_code,
        &q.mac_id,
    )
    .await?;
    Ok(Json(
        json!({"statuscode": 200, "message": "device connected"}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct UnConnectParams {
    unique_id: String,
    real_user_id: i64,
}

pub async fn un_connect(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UnConnectParams>,
) -> Reply {
    service::un_connect(
        &state.store,
        &meta(&caller),
        caller.account_id,
        q.real_user_id,
        &q.unique_id,
    )
    .await?;
    Ok(Json(
        json!({"statusCode": 200, "message": "device unconnected"}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct CheckDeviceParams {
    unique_id: String,
}

pub async fn check_device(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CheckDeviceParams>,
) -> Reply {
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
    Ok(Json(
        json!({"detail": detail, "device_data": device.nueyne_json()}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct UpdateAliasBody {
    device_id: i64,
    real_user_id: i64,
    device_alias: String,
}

pub async fn update_alias(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<UpdateAliasBody>,
) -> Reply {
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

#[derive(Debug, Deserialize)]
pub struct DetailData {
    treatment_date: String,
    #[serde(default)]
    movement: Option<i64>,
    /// v1 sends a string ("2"), v2 an integer or null.
    #[serde(default)]
    finish_flag: Option<Value>,
    last_intensity: i64,
    treatment_time: i64,
    #[serde(default)]
    log_data: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DevlogItem {
    real_user_id: i64,
    device_id: i64,
    #[serde(default)]
    unique_id: Option<String>,
    detail_data: DetailData,
    #[serde(default)]
    log_file_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
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

async fn save_devlog(state: &AppState, caller: &Caller, items: Vec<DevlogItem>) -> Reply {
    let entries = entries(items)?;
    let finished =
        service::upload_devlog(&state.store, &meta(caller), caller.account_id, &entries).await?;
    let message = if finished || entries.is_empty() {
        "Devlog saved successfully"
    } else {
        "Temp devlog saved successfully"
    };
    Ok(Json(json!({"statusCode": 200, "message": message})))
}

pub async fn devlog_v1(
    State(state): State<AppState>,
    caller: Caller,
    Json(items): Json<Vec<DevlogItem>>,
) -> Reply {
    save_devlog(&state, &caller, items).await
}

pub async fn devlog_v2(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<DevlogV2>,
) -> Reply {
    save_devlog(&state, &caller, body.log_arrays).await
}

#[derive(Debug, Deserialize)]
pub struct MovementBody {
    real_user_id: i64,
    device_id: i64,
    movement_data: Vec<MovementSample>,
}

pub async fn movement(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<MovementBody>,
) -> Reply {
    service::record_movement(
        &state.store,
        &meta(&caller),
        caller.account_id,
        b.real_user_id,
        b.device_id,
        &b.movement_data,
    )
    .await?;
    Ok(Json(
        json!({"statusCode": 200, "message": "Movement log saved successfully"}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ChartParams {
    real_user_id: i64,
    select_mode: i64,
    current_date: String,
}

pub async fn chart_recent(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ChartParams>,
) -> Reply {
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
    let end = NaiveDate::parse_from_str(
        q.current_date.get(..10).unwrap_or(&q.current_date),
        "%Y-%m-%d",
    )
    .map_err(|_| {
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
        time_data.push(json!({"treatment_date": day, "treatment_time": time}));
        intensity_data.push(json!({"treatment_date": day, "last_intensity": round1(*intensity)}));
        movement_data.push(json!({"treatment_date": day, "movement": movement}));
    }
    Ok(Json(json!({
        "treatment_time_data": time_data,
        "treatment_intensity_data": intensity_data,
        "movement_data": movement_data,
        "avg_treatment_time": round1(time_sum as f64 / n),
        "avg_treatment_intensity": round1(intensity_sum / n),
        "avg_movement": round1(movement_sum as f64 / n),
    })))
}
