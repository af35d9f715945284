//! Nueyne (Addnox/Lux) doors under `/api/v1/{addnox,lux}/auth/*` and the root-user API of
//! seed 001 under `/api/v1/{addnox,lux}/user/*` (FastAPI shapes). Social sign-in is out of scope.

use super::domain::{self, AccountError};
use super::read::{self, AccountRow};
use super::sms::{self, CodeCheck};
use crate::auth::login::{self, Identifier, LoginError};
use crate::auth::refresh::{self, TokenPair};
use crate::auth::throttle::ClientIp;
use crate::auth::{bearer_token, Caller, TokenType};
use crate::es::CommandError;
use crate::http::{ApiError, Form, Json, Namespace};
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use fleetstream_events::{
    AccountProfile, EventMetadata, NotificationSettings, ProfileChanges, Role,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

const NS: Namespace = Namespace::Nueyne;

fn detail(status: StatusCode, message: &str) -> ApiError {
    ApiError::detail(status, message)
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn actor(id: i64) -> EventMetadata {
    EventMetadata {
        actor: Some(id),
        ..Default::default()
    }
}

fn token_reply(state: &AppState, id: i64, pair: &TokenPair) -> Value {
    json!({
        "access_token": pair.access.token,
        "expires_in": state.jwt.access_ttl.as_secs(),
        "refresh_token": pair.refresh.token,
        "refresh_expires_in": state.jwt.refresh_ttl.as_secs(),
        "id": id,
        "token_type": "bearer",
    })
}

fn domain_error(err: CommandError<AccountError>) -> ApiError {
    if err.is_unique_violation("accounts_email_key") {
        return detail(StatusCode::CONFLICT, "Same email is already registered");
    }
    match err {
        CommandError::Domain(e) => match e {
            AccountError::NotFound => detail(StatusCode::NOT_FOUND, "User not found"),
            AccountError::Gone => detail(StatusCode::UNAUTHORIZED, "User is Deleted"),
            AccountError::PushNotAgreed => detail(StatusCode::BAD_REQUEST, "Push permisson denied"),
            AccountError::InvalidPushToken => {
                detail(StatusCode::CONFLICT, "User push token update failed")
            }
            AccountError::PasswordTooShort => ApiError::validation(
                NS,
                &["body", "password"],
                "String should have at least 8 characters",
                "string_too_short",
            ),
            AccountError::InvalidEmail => ApiError::validation(
                NS,
                &["body", "email"],
                "value is not a valid email address",
                "value_error",
            ),
            AccountError::InvalidGender => {
                ApiError::validation(NS, &["body", "gender"], "Invalid gender", "value_error")
            }
            AccountError::InvalidBirthdate => ApiError::validation(
                NS,
                &["body", "birthdate"],
                "Invalid birthdate",
                "value_error",
            ),
            AccountError::AlreadyRegistered => {
                detail(StatusCode::CONFLICT, "Same email is already registered")
            }
        },
        other => ApiError::command_failed(NS, other),
    }
}

// ---------- auth ----------

#[derive(Deserialize)]
pub struct SigninForm {
    username: String,
    password: String,
}

pub async fn signin(
    State(state): State<AppState>,
    ip: ClientIp,
    Form(form): Form<SigninForm>,
) -> Result<Json<Value>, ApiError> {
    let row = login::authenticate(
        &state,
        Identifier::Email(&form.username),
        &form.password,
        &ip,
    )
    .await
    .map_err(|err| match err {
        LoginError::NotFound => detail(StatusCode::NOT_FOUND, "User not found"),
        LoginError::Deleted => detail(StatusCode::GONE, "User is Deleted"),
        LoginError::WrongPassword => detail(StatusCode::BAD_REQUEST, "Password is invalid"),
        LoginError::Inactive => detail(StatusCode::UNAUTHORIZED, "User is inactive"),
        LoginError::Throttled { retry_after_secs } => {
            ApiError::too_many_requests(NS, retry_after_secs)
        }
        LoginError::Database(e) => internal(e),
    })?;
    let pair = refresh::issue_pair_for(&state, row.id, row.role())
        .await
        .map_err(internal)?;
    Ok(Json(token_reply(&state, row.id, &pair)))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh_token(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    match refresh::rotate(&state, &body.refresh_token).await {
        Ok((id, pair)) => Ok(Json(token_reply(&state, id, &pair))),
        Err(refresh::RefreshError::Database(e)) => Err(internal(e)),
        Err(_) => Err(detail(
            StatusCode::UNAUTHORIZED,
            "Refresh token is not valid",
        )),
    }
}

#[derive(Deserialize)]
pub struct PhoneBody {
    phone: String,
}

pub async fn send_sms_auth(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: axum::http::HeaderMap,
    Json(body): Json<PhoneBody>,
) -> Result<Json<bool>, ApiError> {
    let phone = body.phone.trim();
    if !sms::is_e164(phone) {
        return Err(detail(StatusCode::BAD_REQUEST, "Phone number is invalid"));
    }
    if read::phone_taken(state.pool(), phone)
        .await
        .map_err(internal)?
    {
        return Err(detail(
            StatusCode::CONFLICT,
            "Phone number is already registered",
        ));
    }
    // A signed-in caller (changing their phone) also spends their account's budget.
    let account = match headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(token) => Caller::from_token(&state, token.trim())
            .await
            .ok()
            .map(|c| c.account_id),
        None => None,
    };
    if let Err(refused) = state.sms_limits.try_send(phone, account, &ip.0) {
        metrics::counter!("fleet_sms_refused_total", "limit" => refused.limit.as_str())
            .increment(1);
        tracing::warn!(
            limit = refused.limit.as_str(),
            phone_suffix = &phone[phone.len().saturating_sub(4)..],
            account,
            ip = %ip.0,
            retry_after_secs = refused.retry_after_secs,
            "verification SMS refused"
        );
        let mut err = detail(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many verification requests; retry later",
        );
        err.retry_after_secs = Some(refused.retry_after_secs);
        return Err(err);
    }
    let code = sms::new_code();
    let text = format!("[Nueyne] Verification code: {code}");
    state
        .sms
        .send(&state.store, phone, &text, &code)
        .await
        .map_err(internal)?;
    Ok(Json(true))
}

#[derive(Deserialize)]
pub struct ValidationBody {
    phone: String,
    validnum: String,
}

async fn check_code(state: &AppState, phone: &str, code: &str) -> Result<(), ApiError> {
    match sms::check_code(state.pool(), phone, code, Utc::now())
        .await
        .map_err(internal)?
    {
        CodeCheck::Valid => Ok(()),
        CodeCheck::Expired => Err(detail(
            StatusCode::BAD_REQUEST,
            "Validation code is expired",
        )),
        CodeCheck::Invalid => Err(detail(
            StatusCode::BAD_REQUEST,
            "Validation code is invalid",
        )),
    }
}

pub async fn phone_number_validation(
    State(state): State<AppState>,
    Json(body): Json<ValidationBody>,
) -> Result<Json<Value>, ApiError> {
    let phone = body.phone.trim();
    check_code(&state, phone, &body.validnum).await?;
    let token = state.jwt.issue_phone(phone);
    Ok(Json(json!({ "valid_token": token.token })))
}

#[derive(Deserialize)]
pub struct SignupBody {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    birthdate: String,
    gender: String,
    phone: String,
    #[serde(default)]
    register_type: Option<String>,
    #[serde(default, deserialize_with = "flag_opt")]
    is_push_agree: Option<bool>,
    #[serde(default, deserialize_with = "flag_opt")]
    is_marketing_agree: Option<bool>,
    #[serde(default)]
    national_code: Option<String>,
}

pub async fn email_signup(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<SignupBody>,
) -> Result<Json<Value>, ApiError> {
    let token = bearer_token(&parts).map_err(|f| f.into_error(NS))?;
    let claims = state
        .jwt
        .verify(token, TokenType::Phone)
        .map_err(|_| detail(StatusCode::UNAUTHORIZED, "Could not validate credentials"))?;
    if claims.sub != body.phone.trim() {
        return Err(detail(StatusCode::BAD_REQUEST, "Phone number is invalid"));
    }
    let profile = AccountProfile {
        email: body.email,
        phone: Some(claims.sub.clone()),
        first_name: Some(body.first_name),
        last_name: Some(body.last_name),
        birthdate: Some(body.birthdate),
        gender: Some(body.gender),
        register_type: Some(body.register_type.unwrap_or_else(|| "E".into())),
        national_code: body.national_code,
        is_push_agree: body.is_push_agree.unwrap_or(false),
        is_marketing_agree: body.is_marketing_agree.unwrap_or(false),
        ..Default::default()
    };
    let id = super::register(
        &state.store,
        EventMetadata::default(),
        profile,
        &body.password,
        Role::User,
    )
    .await
    .map_err(domain_error)?;
    // The number was proven by SMS: record it as checked.
    let phone = claims.sub;
    super::change(&state.store, actor(id), id, |a| {
        domain::decide_change_phone(a, &phone, Utc::now())
    })
    .await
    .map_err(domain_error)?;
    let pair = refresh::issue_pair_for(&state, id, Role::User)
        .await
        .map_err(internal)?;
    Ok(Json(token_reply(&state, id, &pair)))
}

// ---------- root user ----------

/// Booleans sent as `true/false` or `0/1` (the seed's example uses 1).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) if ["true", "1"].contains(&s.as_str()) => Ok(true),
        Value::String(s) if ["false", "0"].contains(&s.as_str()) => Ok(false),
        _ => Err(serde::de::Error::custom("Input should be a valid boolean")),
    }
}

fn flag_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    flag(d).map(Some)
}

async fn root_user(state: &AppState, caller: &Caller) -> Result<AccountRow, ApiError> {
    read::live_by_id(state.pool(), caller.account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| detail(StatusCode::UNAUTHORIZED, "User is None"))
}

pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let u = root_user(&state, &caller).await?;
    Ok(Json(json!({
        "root_user_id": u.id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "birthdate": u.birthdate,
        "gender": u.gender,
        "phone": u.phone,
        "is_phone_number_checked": u.is_phone_number_checked,
        "register_type": u.register_type,
        "national_code": u.national_code,
        "need_personal_info_update": u.birthdate.is_none() || u.gender.is_none(),
        "need_to_pwd_change": Utc::now() - u.password_changed_at > Duration::days(90),
        "is_device_muted": u.is_device_muted,
        "is_device_alim_talk_enabled": u.is_device_alim_talk_enabled,
        "is_basestation_alert_enabled": u.is_basestation_alert_enabled,
    })))
}

#[derive(Deserialize)]
pub struct RootUserPatch {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    birthdate: Option<String>,
    #[serde(default)]
    gender: Option<String>,
}

pub async fn patch_root_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<RootUserPatch>,
) -> Result<Json<Value>, ApiError> {
    let changes = ProfileChanges {
        first_name: body.first_name,
        last_name: body.last_name,
        birthdate: body.birthdate,
        gender: body.gender,
        ..Default::default()
    };
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_change_profile(a, changes.clone(), now),
    )
    .await
    .map_err(domain_error)?;
    let u = root_user(&state, &caller).await?;
    Ok(Json(json!({
        "id": u.id,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "birthdate": u.birthdate,
        "gender": u.gender,
        "phone": u.phone,
        "is_phone_number_checked": u.is_phone_number_checked,
        "register_type": u.register_type,
    })))
}

#[derive(Deserialize)]
pub struct PolicyBody {
    #[serde(default, deserialize_with = "flag_opt")]
    is_push_agree: Option<bool>,
    #[serde(default, deserialize_with = "flag_opt")]
    is_marketing_agree: Option<bool>,
}

pub async fn patch_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PolicyBody>,
) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_change_policy(a, body.is_push_agree, body.is_marketing_agree, now),
    )
    .await
    .map_err(|e| match e {
        CommandError::Domain(AccountError::NotFound | AccountError::Gone) => {
            detail(StatusCode::NOT_FOUND, "User not found")
        }
        other => domain_error(other),
    })?;
    let u = root_user(&state, &caller).await?;
    Ok(Json(json!({
        "is_push_agree": u.is_push_agree,
        "is_marketing_agree": u.is_marketing_agree,
        "push_agree_date": u.push_agreed_at,
        "marketing_agree_date": u.marketing_agreed_at,
    })))
}

#[derive(Deserialize)]
pub struct PushTokenBody {
    token: String,
}

pub async fn set_push_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PushTokenBody>,
) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_set_push_token(a, &body.token, now),
    )
    .await
    .map_err(domain_error)?;
    Ok(Json(json!("User push token updated")))
}

#[derive(Deserialize)]
pub struct ChangePhoneBody {
    phone: String,
    #[serde(default)]
    validnum: Option<String>,
}

pub async fn change_phone(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ChangePhoneBody>,
) -> Result<Json<Value>, ApiError> {
    let phone = body.phone.trim().to_owned();
    if !sms::is_e164(&phone) {
        return Err(detail(StatusCode::BAD_REQUEST, "Phone number is invalid"));
    }
    check_code(&state, &phone, body.validnum.as_deref().unwrap_or_default()).await?;
    if read::phone_taken(state.pool(), &phone)
        .await
        .map_err(internal)?
    {
        return Err(detail(
            StatusCode::CONFLICT,
            "Phone number is already registered",
        ));
    }
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_change_phone(a, &phone, now),
    )
    .await
    .map_err(|e| match e {
        CommandError::Domain(AccountError::Gone) => {
            detail(StatusCode::FORBIDDEN, "User previously deleted")
        }
        other => domain_error(other),
    })?;
    Ok(Json(
        json!({"statusCode": 200, "message": "Root user phone updated"}),
    ))
}

#[derive(Deserialize)]
pub struct NotificationBody {
    #[serde(deserialize_with = "flag")]
    is_device_muted: bool,
    #[serde(deserialize_with = "flag")]
    is_device_alim_talk_enabled: bool,
    #[serde(deserialize_with = "flag")]
    is_basestation_alert_enabled: bool,
}

pub async fn patch_notification(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NotificationBody>,
) -> Result<Json<Value>, ApiError> {
    let settings = NotificationSettings {
        is_device_muted: body.is_device_muted,
        is_device_alim_talk_enabled: body.is_device_alim_talk_enabled,
        is_basestation_alert_enabled: body.is_basestation_alert_enabled,
    };
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_change_notifications(a, settings, now),
    )
    .await
    .map_err(|e| match e {
        CommandError::Domain(AccountError::NotFound | AccountError::Gone) => {
            detail(StatusCode::NOT_FOUND, "User not found")
        }
        other => domain_error(other),
    })?;
    let n = |b: bool| i32::from(b);
    Ok(Json(json!({
        "is_device_muted": n(settings.is_device_muted),
        "is_device_alim_talk_enabled": n(settings.is_device_alim_talk_enabled),
        "is_basestation_alert_enabled": n(settings.is_basestation_alert_enabled),
    })))
}

pub async fn delete_root_user(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    super::withdraw(&state.store, actor(caller.account_id), caller.account_id)
        .await
        .map_err(domain_error)?;
    Ok(Json(
        json!({"statusCode": 200, "message": "Root user deleted"}),
    ))
}
