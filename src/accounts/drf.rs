//! Seed 004 (simplejwt) doors: `/api/token/`, `/api/token/refresh/` (rotates),
//! `/api/token/verify/`.

use crate::auth::login::{self, Identifier, LoginError};
use crate::auth::refresh::{self, RefreshError};
use crate::auth::throttle::ClientIp;
use crate::auth::TokenType;
use crate::http::{ApiError, Json, Namespace};
use crate::openapi::{tags, DrfError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// simplejwt token pair.
#[derive(Serialize, ToSchema)]
pub struct TokenPairReply {
    refresh: String,
    access: String,
}

/// simplejwt verify: an empty object.
#[derive(Serialize, ToSchema)]
pub struct Verified {}

const NS: Namespace = Namespace::Drf;

fn token_not_valid() -> ApiError {
    ApiError::with_body(
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
    )
}

#[derive(Deserialize, ToSchema)]
pub struct ObtainBody {
    /// A username, or an email when no username matches.
    username: String,
    password: String,
}

#[utoipa::path(post, path = "/api/token/", tag = tags::DRF, request_body = ObtainBody,
    responses((status = 200, body = TokenPairReply),
        (status = 401, description = "No active account found with the given credentials", body = DrfError),
        (status = 429, description = "Too many failed logins", body = DrfError, headers(("Retry-After" = u64)))))]
pub async fn obtain(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<ObtainBody>,
) -> Result<Json<TokenPairReply>, ApiError> {
    let row = login::authenticate(
        &state,
        Identifier::UsernameOrEmail(&body.username),
        &body.password,
        &ip,
    )
    .await
    .map_err(|err| match err {
        LoginError::Throttled { retry_after_secs } => {
            ApiError::too_many_requests(NS, retry_after_secs)
        }
        LoginError::Database(e) => ApiError::internal(NS, e),
        _ => ApiError::detail(
            StatusCode::UNAUTHORIZED,
            "No active account found with the given credentials",
        ),
    })?;
    let pair = refresh::issue_pair_for(&state, row.id, row.role())
        .await
        .map_err(|e| ApiError::internal(NS, e))?;
    Ok(Json(TokenPairReply {
        refresh: pair.refresh.token,
        access: pair.access.token,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DrfRefreshBody)]
pub struct RefreshBody {
    refresh: String,
}

/// Rotates: the refresh token sent is revoked.
#[utoipa::path(post, path = "/api/token/refresh/", tag = tags::DRF, request_body = RefreshBody,
    responses((status = 200, body = TokenPairReply), (status = 401, description = "Token is invalid or expired", body = DrfError)))]
pub async fn refresh_pair(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenPairReply>, ApiError> {
    match refresh::rotate(&state, &body.refresh).await {
        Ok((_, pair)) => Ok(Json(TokenPairReply {
            access: pair.access.token,
            refresh: pair.refresh.token,
        })),
        Err(RefreshError::Database(e)) => Err(ApiError::internal(NS, e)),
        Err(_) => Err(token_not_valid()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyBody {
    token: String,
}

/// simplejwt verifies the signature and expiry of any of its tokens.
#[utoipa::path(post, path = "/api/token/verify/", tag = tags::DRF, request_body = VerifyBody,
    responses((status = 200, body = Verified), (status = 401, description = "Token is invalid or expired", body = DrfError)))]
pub async fn verify(
    State(state): State<AppState>,
    Json(body): Json<VerifyBody>,
) -> Result<Json<Verified>, ApiError> {
    let ok = state.jwt.verify(&body.token, TokenType::Access).is_ok()
        || state.jwt.verify(&body.token, TokenType::Refresh).is_ok();
    if ok {
        Ok(Json(Verified {}))
    } else {
        Err(token_not_valid())
    }
}
