//! Seed 003 (KooDTX) doors under `/api/auth` (Flask shapes: `{"error": ..}`, token errors
//! `{"msg": ..}`). Its refresh does not rotate (CONTRACT §7).

use super::domain::AccountError;
use super::read;
use crate::auth::login::{self, Identifier, LoginError};
use crate::auth::refresh::{self, RefreshError};
use crate::auth::throttle::ClientIp;
use crate::auth::{bearer_token, AuthFailure, Caller, TokenType};
use crate::es::CommandError;
use crate::http::{ApiError, Namespace, RawBody};
use crate::openapi::{tags, JwtMsg, KoodtxError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fleetstream_events::{AccountProfile, EventMetadata, Role};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// Every field is required and must not be blank.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = KoodtxRegisterBody)]
pub struct RegisterBody {
    #[schema(pattern = "\\S")]
    username: String,
    #[schema(value_type = crate::openapi::patterns::Email)]
    email: String,
    #[schema(min_length = 8)]
    password: String,
    /// Unique across accounts.
    #[schema(pattern = "\\S")]
    device_id: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = KoodtxLoginBody)]
pub struct LoginBody {
    #[schema(pattern = "\\S")]
    username: String,
    #[schema(pattern = "\\S")]
    password: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuthReply {
    access_token: String,
    refresh_token: String,
    user: super::read::KoodtxUser,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AccessReply {
    access_token: String,
}

const NS: Namespace = Namespace::KooDtx;

fn error(status: StatusCode, message: &str) -> ApiError {
    ApiError::error(status, message)
}

/// Non-empty string fields of a JSON object body; `None` when any is missing.
fn fields<const N: usize>(body: &Bytes, names: [&str; N]) -> Option<[String; N]> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, name) in out.iter_mut().zip(names) {
        let v = value.get(name)?.as_str()?.trim();
        // Postgres text cannot hold NUL: such a value is as unusable as a missing one.
        if v.is_empty() || v.contains('\0') {
            return None;
        }
        *slot = v.to_owned();
    }
    Some(out)
}

fn reply(row: &read::AccountRow, pair: &refresh::TokenPair) -> Value {
    json!({
        "access_token": pair.access.token,
        "refresh_token": pair.refresh.token,
        "user": row.koodtx_json(),
    })
}

#[utoipa::path(post, path = "/api/auth/register", tag = tags::KOODTX, request_body = RegisterBody,
    responses((status = 201, body = AuthReply),
        (status = 400, description = "Missing fields, or username, email or device_id taken", body = KoodtxError)))]
pub async fn register(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let Some([username, email, password, device_id]) =
        fields(&body, ["username", "email", "password", "device_id"])
    else {
        return Err(error(StatusCode::BAD_REQUEST, "Missing required fields"));
    };
    let profile = AccountProfile {
        email,
        username: Some(username),
        device_id: Some(device_id),
        ..Default::default()
    };
    let id = super::register(
        &state.store,
        EventMetadata::default(),
        profile,
        &password,
        Role::User,
    )
    .await
    .map_err(|err: CommandError<AccountError>| {
        let bad = |m| error(StatusCode::BAD_REQUEST, m);
        if err.is_unique_violation("accounts_username_key") {
            bad("Username already exists")
        } else if super::email_taken(&err) {
            bad("Email already exists")
        } else if err.is_unique_violation("accounts_device_id_key") {
            bad("Device ID already exists")
        } else {
            match err {
                CommandError::Domain(AccountError::PasswordTooShort) => {
                    bad("Password must be at least 8 characters")
                }
                CommandError::Domain(AccountError::InvalidEmail) => bad("Invalid email"),
                other => ApiError::command_failed(NS, other),
            }
        }
    })?;
    let row = read::live_by_id(state.pool(), id)
        .await
        .map_err(|e| ApiError::internal(NS, e))?
        .ok_or_else(|| ApiError::internal(NS, "registered account not readable"))?;
    let pair = refresh::issue_pair_for(&state, id, Role::User)
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    Ok((StatusCode::CREATED, axum::Json(reply(&row, &pair))).into_response())
}

#[utoipa::path(post, path = "/api/auth/login", tag = tags::KOODTX, request_body = LoginBody,
    responses((status = 200, body = AuthReply),
        (status = 400, description = "Missing username or password", body = KoodtxError),
        (status = 401, description = "Invalid username or password", body = KoodtxError),
        (status = 429, description = "Too many failed logins", body = KoodtxError, headers(("Retry-After" = u64)))))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    RawBody(body): RawBody,
) -> Result<axum::Json<Value>, ApiError> {
    let Some([username, password]) = fields(&body, ["username", "password"]) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Missing username or password",
        ));
    };
    let row = login::authenticate(&state, Identifier::Username(&username), &password, &ip)
        .await
        .map_err(|err| match err {
            LoginError::Throttled { retry_after_secs } => {
                ApiError::too_many_requests(NS, retry_after_secs)
            }
            LoginError::Database(e) => ApiError::internal(NS, e),
            _ => error(StatusCode::UNAUTHORIZED, "Invalid username or password"),
        })?;
    let pair = refresh::issue_pair_for(&state, row.id, row.role())
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    Ok(axum::Json(reply(&row, &pair)))
}

/// Bearer refresh token → a new access token; the refresh token stays valid.
#[utoipa::path(post, path = "/api/auth/refresh", tag = tags::KOODTX, security(("bearer" = [])),
    responses((status = 200, body = AccessReply),
        (status = 401, description = "Missing, expired or revoked refresh token", body = JwtMsg),
        (status = 422, description = "Not a refresh token, or one that does not verify", body = JwtMsg)))]
pub async fn refresh_access(
    State(state): State<AppState>,
    parts: Parts,
) -> Result<axum::Json<Value>, ApiError> {
    let token = bearer_token(&parts).map_err(|f| f.into_error(NS))?;
    let (account_id, role) = refresh::check(&state, token)
        .await
        .map_err(|err| match err {
            RefreshError::WrongType => ApiError::msg(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Only refresh tokens are allowed",
            ),
            RefreshError::Expired => AuthFailure::Expired.into_error(NS),
            RefreshError::Invalid => AuthFailure::Invalid.into_error(NS),
            RefreshError::Reused | RefreshError::AccountUnusable => {
                ApiError::msg(StatusCode::UNAUTHORIZED, "Token has been revoked")
            }
            RefreshError::Database(e) => ApiError::internal(NS, e),
        })?;
    let access = state
        .jwt
        .issue(account_id, role.as_str(), TokenType::Access, None);
    Ok(axum::Json(json!({ "access_token": access.token })))
}

#[utoipa::path(get, path = "/api/auth/me", tag = tags::KOODTX, security(("bearer" = [])),
    responses((status = 200, body = super::read::KoodtxUser)))]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<super::read::KoodtxUser>, ApiError> {
    let row = read::live_by_id(state.pool(), caller.account_id)
        .await
        .map_err(|e| ApiError::internal(NS, e))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "User not found"))?;
    Ok(axum::Json(row.koodtx_json()))
}
