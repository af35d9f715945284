use super::{TokenError, TokenType};
use crate::http::{ApiError, Namespace};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use fleetstream_events::Role;
use serde_json::json;

/// The authenticated account behind a request. Checked against the accounts read model on
/// every request, so a deactivated or withdrawn account is refused at once.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: i64,
    pub role: Role,
}

impl Caller {
    pub fn is_manager(&self) -> bool {
        self.role.is_manager()
    }
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }
}

/// Why a request is not authenticated, rendered per namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    WrongType,
    AccountUnusable,
    /// The accounts read model cannot be reached: the token may be fine, so not a 401.
    Unavailable,
    /// The token is still valid but its account was deleted or withdrawn; seed 001 names
    /// this case (401 `User is Deleted`), the other namespaces treat it as unusable.
    AccountDeleted,
}

impl AuthFailure {
    pub fn into_error(self, ns: Namespace) -> ApiError {
        use AuthFailure::*;
        let unauthorized = StatusCode::UNAUTHORIZED;
        if self == Unavailable {
            return ApiError::unavailable(ns);
        }
        match ns {
            Namespace::Nueyne if self == AccountDeleted => {
                ApiError::detail(unauthorized, "User is Deleted")
            }
            Namespace::Nueyne | Namespace::Core => match self {
                Missing => ApiError::detail(unauthorized, "Not authenticated"),
                Expired => ApiError::detail(unauthorized, "Token is expired"),
                Invalid | WrongType | AccountUnusable | AccountDeleted | Unavailable => {
                    ApiError::detail(unauthorized, "Could not validate credentials")
                }
            },
            Namespace::KooDtx => match self {
                Missing => ApiError::msg(unauthorized, "Missing Authorization Header"),
                Expired => ApiError::msg(unauthorized, "Token has expired"),
                WrongType => ApiError::msg(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Only access tokens are allowed",
                ),
                Invalid => ApiError::msg(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Signature verification failed",
                ),
                AccountUnusable | AccountDeleted | Unavailable => {
                    ApiError::msg(unauthorized, "User not found")
                }
            },
            Namespace::Drf => match self {
                Missing => ApiError::detail(
                    unauthorized,
                    "Authentication credentials were not provided.",
                ),
                AccountUnusable | AccountDeleted | Unavailable => ApiError::with_body(
                    unauthorized,
                    json!({"detail": "User is inactive", "code": "user_inactive"}),
                ),
                Invalid | Expired | WrongType => ApiError::with_body(
                    unauthorized,
                    json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"}),
                ),
            },
        }
    }
}

impl From<TokenError> for AuthFailure {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => AuthFailure::Expired,
            TokenError::Invalid => AuthFailure::Invalid,
            TokenError::WrongType => AuthFailure::WrongType,
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(parts: &Parts) -> Result<&str, AuthFailure> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthFailure::Missing)?
        .to_str()
        .map_err(|_| AuthFailure::Invalid)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Invalid);
    }
    Ok(token.trim())
}

impl Caller {
    /// Authenticates an access token against the accounts read model.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Caller, AuthFailure> {
        let claims = state.jwt.verify(token, TokenType::Access)?;
        let account_id = claims.account_id().ok_or(AuthFailure::Invalid)?;
        let row: Option<(String, bool, bool)> = sqlx::query_as(
            "SELECT role, is_active, deleted_at IS NOT NULL FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&state.store.pool)
        .await
        .map_err(|err| {
            if crate::db::is_unavailable(&err) {
                tracing::warn!(error = %err, "database unavailable during authentication");
                return AuthFailure::Unavailable;
            }
            tracing::error!(error = %err, "account lookup failed during authentication");
            AuthFailure::AccountUnusable
        })?;
        match row {
            Some((_, _, true)) => Err(AuthFailure::AccountDeleted),
            Some((role, true, false)) => Ok(Caller {
                account_id,
                role: Role::parse(&role).ok_or(AuthFailure::AccountUnusable)?,
            }),
            _ => Err(AuthFailure::AccountUnusable),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(&parts.uri);
        let token = bearer_token(parts).map_err(|f| f.into_error(ns))?;
        let caller = Caller::from_token(state, token)
            .await
            .map_err(|f| f.into_error(ns))?;
        crate::es::context::set_actor(caller.account_id);
        Ok(caller)
    }
}
