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
use crate::openapi::{tags, Detail};
use crate::routes::nueyne::AppParam;
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use fleetstream_events::{
    AccountProfile, EventMetadata, NotificationSettings, ProfileChanges, Role,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The nueyne token reply; `expires_in` and `refresh_expires_in` are seconds.
#[derive(Serialize, ToSchema)]
pub struct NueyneTokens {
    access_token: String,
    expires_in: u64,
    refresh_token: String,
    refresh_expires_in: u64,
    id: i64,
    #[schema(pattern = "^bearer$")]
    token_type: &'static str,
}

/// `{"statusCode": 200, "message": ...}` replies of seeds 000/001.
#[derive(Serialize, ToSchema)]
pub struct StatusMessage {
    #[serde(rename = "statusCode")]
    #[schema(rename = "statusCode")]
    pub status_code: u16,
    pub message: &'static str,
}

impl StatusMessage {
    pub fn ok(message: &'static str) -> Self {
        Self {
            status_code: 200,
            message,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ValidToken {
    /// Sign up with it as the bearer token.
    valid_token: String,
}

/// Seed 001 `me`.
#[derive(Serialize, ToSchema)]
pub struct RootUserMe {
    root_user_id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    birthdate: Option<String>,
    gender: Option<String>,
    phone: Option<String>,
    is_phone_number_checked: bool,
    /// `E` (email sign-up) or `S` (social).
    register_type: Option<String>,
    national_code: Option<String>,
    need_personal_info_update: bool,
    need_to_pwd_change: bool,
    is_device_muted: bool,
    is_device_alim_talk_enabled: bool,
    is_basestation_alert_enabled: bool,
}

/// Seed 001 `PATCH root-user` reply.
#[derive(Serialize, ToSchema)]
pub struct RootUser {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    birthdate: Option<String>,
    gender: Option<String>,
    phone: Option<String>,
    is_phone_number_checked: bool,
    register_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PolicyReply {
    is_push_agree: bool,
    is_marketing_agree: bool,
    push_agree_date: Option<chrono::DateTime<Utc>>,
    marketing_agree_date: Option<chrono::DateTime<Utc>>,
}

/// The seed answers the flags as 0/1.
#[derive(Serialize, ToSchema)]
pub struct NotificationReply {
    #[schema(minimum = 0, maximum = 1)]
    is_device_muted: i32,
    #[schema(minimum = 0, maximum = 1)]
    is_device_alim_talk_enabled: i32,
    #[schema(minimum = 0, maximum = 1)]
    is_basestation_alert_enabled: i32,
}

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

fn token_reply(state: &AppState, id: i64, pair: &TokenPair) -> NueyneTokens {
    NueyneTokens {
        access_token: pair.access.token.clone(),
        expires_in: state.jwt.access_ttl.as_secs(),
        refresh_token: pair.refresh.token.clone(),
        refresh_expires_in: state.jwt.refresh_ttl.as_secs(),
        id,
        token_type: "bearer",
    }
}

fn domain_error(err: CommandError<AccountError>) -> ApiError {
    if super::email_taken(&err) {
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
        CommandError::Conflict(_) => detail(StatusCode::CONFLICT, "User update failed"),
        other => ApiError::command_failed(NS, other),
    }
}

// ---------- auth ----------

#[derive(Deserialize, ToSchema)]
pub struct SigninForm {
    /// The account's email.
    username: String,
    password: String,
}

/// A form (OAuth2 password style); JSON is accepted too.
#[utoipa::path(post, path = "/api/v1/{app}/auth/email/signin", tag = tags::NUEYNE, params(AppParam),
    request_body(content(
        (SigninForm = "application/x-www-form-urlencoded"),
        (SigninForm = "application/json"),
    )),
    responses((status = 200, body = NueyneTokens),
        (status = 400, description = "Password is invalid", body = Detail),
        (status = 401, description = "User is inactive", body = Detail),
        (status = 404, description = "User not found", body = Detail),
        (status = 410, description = "User is Deleted", body = Detail),
        (status = 429, description = "Too many failed logins", body = Detail, headers(("Retry-After" = u64)))))]
pub async fn signin(
    State(state): State<AppState>,
    ip: ClientIp,
    Form(form): Form<SigninForm>,
) -> Result<Json<NueyneTokens>, ApiError> {
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

#[derive(Deserialize, ToSchema)]
#[schema(as = NueyneRefreshBody)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Rotates: the refresh token sent is revoked.
#[utoipa::path(post, path = "/api/v1/{app}/auth/refresh-token", tag = tags::NUEYNE, params(AppParam),
    request_body = RefreshBody,
    responses((status = 200, body = NueyneTokens),
        (status = 401, description = "Refresh token is not valid", body = Detail)))]
pub async fn refresh_token(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<NueyneTokens>, ApiError> {
    match refresh::rotate(&state, &body.refresh_token).await {
        Ok((id, pair)) => Ok(Json(token_reply(&state, id, &pair))),
        Err(refresh::RefreshError::Database(e)) => Err(internal(e)),
        Err(_) => Err(detail(
            StatusCode::UNAUTHORIZED,
            "Refresh token is not valid",
        )),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct PhoneBody {
    /// E.164, e.g. `+821012345678`.
    #[schema(value_type = crate::openapi::patterns::E164)]
    phone: String,
}

/// Sends a verification code by SMS.
#[utoipa::path(post, path = "/api/v1/{app}/auth/send-sms-auth", tag = tags::NUEYNE, params(AppParam),
    request_body = PhoneBody,
    responses((status = 200, body = bool, content_type = "application/json"),
        (status = 400, description = "Phone number is invalid", body = Detail),
        (status = 409, description = "Phone number is already registered", body = Detail),
        (status = 429, description = "Too many verification requests; retry later (Retry-After)", body = Detail)))]
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

#[derive(Deserialize, ToSchema)]
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

/// Checks the SMS code; the reply's token signs the sign-up.
#[utoipa::path(post, path = "/api/v1/{app}/auth/phone-number-validation", tag = tags::NUEYNE, params(AppParam),
    request_body = ValidationBody,
    responses((status = 200, body = ValidToken),
        (status = 400, description = "Validation code is expired / invalid", body = Detail)))]
pub async fn phone_number_validation(
    State(state): State<AppState>,
    Json(body): Json<ValidationBody>,
) -> Result<Json<ValidToken>, ApiError> {
    let phone = body.phone.trim();
    check_code(&state, phone, &body.validnum).await?;
    let token = state.jwt.issue_phone(phone);
    Ok(Json(ValidToken {
        valid_token: token.token,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct SignupBody {
    #[schema(value_type = crate::openapi::patterns::Email)]
    email: String,
    #[schema(min_length = 8)]
    password: String,
    first_name: String,
    last_name: String,
    #[schema(value_type = crate::openapi::patterns::Birthdate)]
    birthdate: String,
    #[schema(value_type = crate::openapi::patterns::Gender)]
    gender: String,
    /// The number the bearer token was issued for.
    #[schema(value_type = crate::openapi::patterns::E164)]
    phone: String,
    #[serde(default)]
    register_type: Option<String>,
    #[serde(default, deserialize_with = "flag_opt")]
    #[schema(value_type = Option<crate::openapi::Flag>)]
    is_push_agree: Option<bool>,
    #[serde(default, deserialize_with = "flag_opt")]
    #[schema(value_type = Option<crate::openapi::Flag>)]
    is_marketing_agree: Option<bool>,
    #[serde(default)]
    national_code: Option<String>,
}

/// Signed with the `valid_token` of `phone-number-validation` as the bearer token.
#[utoipa::path(post, path = "/api/v1/{app}/auth/email/signup", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = [])), request_body = SignupBody,
    responses((status = 200, body = NueyneTokens),
        (status = 400, description = "Phone number is invalid", body = Detail),
        (status = 409, description = "Same email is already registered", body = Detail)))]
pub async fn email_signup(
    State(state): State<AppState>,
    PhoneToken(claims): PhoneToken,
    Json(body): Json<SignupBody>,
) -> Result<Json<NueyneTokens>, ApiError> {
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

/// The bearer phone-validation token of a sign-up, checked before the body is read.
pub struct PhoneToken(crate::auth::Claims);

impl axum::extract::FromRequestParts<AppState> for PhoneToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).map_err(|f| f.into_error(NS))?;
        state
            .jwt
            .verify(token, TokenType::Phone)
            .map(PhoneToken)
            .map_err(|_| detail(StatusCode::UNAUTHORIZED, "Could not validate credentials"))
    }
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

/// An optional flag: absent or `null` leaves it as it is.
fn flag_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        other => flag(other).map(Some).map_err(serde::de::Error::custom),
    }
}

async fn root_user(state: &AppState, caller: &Caller) -> Result<AccountRow, ApiError> {
    read::live_by_id(state.pool(), caller.account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| detail(StatusCode::UNAUTHORIZED, "User is None"))
}

#[utoipa::path(get, path = "/api/v1/{app}/user/me", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = RootUserMe)))]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RootUserMe>, ApiError> {
    let u = root_user(&state, &caller).await?;
    Ok(Json(RootUserMe {
        root_user_id: u.id,
        need_personal_info_update: u.birthdate.is_none() || u.gender.is_none(),
        need_to_pwd_change: Utc::now() - u.password_changed_at > Duration::days(90),
        first_name: u.first_name,
        last_name: u.last_name,
        birthdate: u.birthdate,
        gender: u.gender,
        phone: u.phone,
        is_phone_number_checked: u.is_phone_number_checked,
        register_type: u.register_type,
        national_code: u.national_code,
        is_device_muted: u.is_device_muted,
        is_device_alim_talk_enabled: u.is_device_alim_talk_enabled,
        is_basestation_alert_enabled: u.is_basestation_alert_enabled,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct RootUserPatch {
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

/// `birthdate` is `yyyymmdd`; `gender` one of `M`, `F`, `N`, `P`.
#[utoipa::path(patch, path = "/api/v1/{app}/user/root-user", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = RootUserPatch,
    responses((status = 200, body = RootUser)))]
pub async fn patch_root_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<RootUserPatch>,
) -> Result<Json<RootUser>, ApiError> {
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
    Ok(Json(RootUser {
        id: u.id,
        first_name: u.first_name,
        last_name: u.last_name,
        birthdate: u.birthdate,
        gender: u.gender,
        phone: u.phone,
        is_phone_number_checked: u.is_phone_number_checked,
        register_type: u.register_type,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PolicyBody {
    #[serde(default, deserialize_with = "flag_opt")]
    #[schema(value_type = Option<crate::openapi::Flag>)]
    is_push_agree: Option<bool>,
    #[serde(default, deserialize_with = "flag_opt")]
    #[schema(value_type = Option<crate::openapi::Flag>)]
    is_marketing_agree: Option<bool>,
}

/// Push and marketing consent; never requires a push token (CONTRACT §7).
#[utoipa::path(patch, path = "/api/v1/{app}/user/policy", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = PolicyBody,
    responses((status = 200, body = PolicyReply),
        (status = 404, description = "User not found", body = Detail)))]
pub async fn patch_policy(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PolicyBody>,
) -> Result<Json<PolicyReply>, ApiError> {
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
        CommandError::Conflict(_) => detail(StatusCode::CONFLICT, "User policy update failed"),
        other => domain_error(other),
    })?;
    let u = root_user(&state, &caller).await?;
    Ok(Json(PolicyReply {
        is_push_agree: u.is_push_agree,
        is_marketing_agree: u.is_marketing_agree,
        push_agree_date: u.push_agreed_at,
        marketing_agree_date: u.marketing_agreed_at,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PushTokenBody {
    /// The FCM token.
    token: String,
}

#[utoipa::path(post, path = "/api/v1/{app}/user/push/set-token", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = PushTokenBody,
    responses((status = 200, body = String, content_type = "application/json"),
        (status = 400, description = "Push permisson denied", body = Detail),
        (status = 409, description = "User push token update failed", body = Detail)))]
pub async fn set_push_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PushTokenBody>,
) -> Result<Json<&'static str>, ApiError> {
    let now = Utc::now();
    super::change(
        &state.store,
        actor(caller.account_id),
        caller.account_id,
        |a| domain::decide_set_push_token(a, &body.token, now),
    )
    .await
    .map_err(domain_error)?;
    Ok(Json("User push token updated"))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePhoneBody {
    phone: String,
    #[serde(default)]
    validnum: Option<String>,
}

/// After `send-sms-auth` to the new number; `validnum` is the code.
#[utoipa::path(post, path = "/api/v1/{app}/user/change-phone", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = ChangePhoneBody,
    responses((status = 200, body = StatusMessage),
        (status = 400, description = "Phone number is invalid, or the code expired / invalid", body = Detail),
        (status = 403, description = "User previously deleted", body = Detail),
        (status = 409, description = "Phone number is already registered", body = Detail)))]
pub async fn change_phone(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ChangePhoneBody>,
) -> Result<Json<StatusMessage>, ApiError> {
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
    Ok(Json(StatusMessage::ok("Root user phone updated")))
}

/// Each flag as a boolean or 0/1.
#[derive(Deserialize, ToSchema)]
pub struct NotificationBody {
    #[serde(deserialize_with = "flag")]
    #[schema(value_type = crate::openapi::Flag)]
    is_device_muted: bool,
    #[serde(deserialize_with = "flag")]
    #[schema(value_type = crate::openapi::Flag)]
    is_device_alim_talk_enabled: bool,
    #[serde(deserialize_with = "flag")]
    #[schema(value_type = crate::openapi::Flag)]
    is_basestation_alert_enabled: bool,
}

#[utoipa::path(patch, path = "/api/v1/{app}/user/notification", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])), request_body = NotificationBody,
    responses((status = 200, body = NotificationReply),
        (status = 404, description = "User not found", body = Detail)))]
pub async fn patch_notification(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NotificationBody>,
) -> Result<Json<NotificationReply>, ApiError> {
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
        CommandError::Conflict(_) => {
            detail(StatusCode::CONFLICT, "User notification update failed")
        }
        other => domain_error(other),
    })?;
    let n = |b: bool| i32::from(b);
    Ok(Json(NotificationReply {
        is_device_muted: n(settings.is_device_muted),
        is_device_alim_talk_enabled: n(settings.is_device_alim_talk_enabled),
        is_basestation_alert_enabled: n(settings.is_basestation_alert_enabled),
    }))
}

/// Withdraws the account; its tokens then answer 401 `User is Deleted`.
#[utoipa::path(delete, path = "/api/v1/{app}/user/root-user", tag = tags::NUEYNE, params(AppParam),
    security(("bearer" = []), ("nueyne_form" = [])),
    responses((status = 200, body = StatusMessage)))]
pub async fn delete_root_user(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusMessage>, ApiError> {
    super::withdraw(&state.store, actor(caller.account_id), caller.account_id)
        .await
        .map_err(domain_error)?;
    Ok(Json(StatusMessage::ok("Root user deleted")))
}
