//! Seed 004 (simplejwt) doors: `/api/token/`, `/api/token/refresh/` (rotates),
//! `/api/token/verify/`.

use crate::auth::login::{self, Identifier, LoginError};
use crate::auth::refresh::{self, RefreshError};
use crate::auth::throttle::ClientIp;
use crate::auth::TokenType;
use crate::http::{ApiError, Json, Namespace};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

const NS: Namespace = Namespace::Drf;

fn token_not_valid() -> ApiError {
    ApiError::with_body(
        StatusCode::UNAUTHORIZED,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
    )
}

#[derive(Deserialize)]
pub struct ObtainBody {
    username: String,
    password: String,
}

pub async fn obtain(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<ObtainBody>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"refresh": pair.refresh.token, "access": pair.access.token}),
    ))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh: String,
}

pub async fn refresh_pair(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<Value>, ApiError> {
    match refresh::rotate(&state, &body.refresh).await {
        Ok((_, pair)) => Ok(Json(
            json!({"access": pair.access.token, "refresh": pair.refresh.token}),
        )),
        Err(RefreshError::Database(e)) => Err(ApiError::internal(NS, e)),
        Err(_) => Err(token_not_valid()),
    }
}

#[derive(Deserialize)]
pub struct VerifyBody {
    token: String,
}

/// simplejwt verifies the signature and expiry of any of its tokens.
pub async fn verify(
    State(state): State<AppState>,
    Json(body): Json<VerifyBody>,
) -> Result<Json<Value>, ApiError> {
    let ok = state.jwt.verify(&body.token, TokenType::Access).is_ok()
        || state.jwt.verify(&body.token, TokenType::Refresh).is_ok();
    if ok {
        Ok(Json(json!({})))
    } else {
        Err(token_not_valid())
    }
}
