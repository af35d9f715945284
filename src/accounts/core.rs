//! Seed 002 doors and users API under `/api/v1/auth` and `/api/v1/users` (FastAPI shapes).

use super::domain::{self, AccountError};
use super::read::{self, AccountRow, CoreUser};
use crate::auth::login::{self, Identifier, LoginError};
use crate::auth::refresh::{self, RefreshError, TokenPair};
use crate::auth::throttle::ClientIp;
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace, Path, Query};
use crate::openapi::{tags, Detail};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use fleetstream_events::{AccountProfile, EventMetadata, ProfileChanges, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const NS: Namespace = Namespace::Core;

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn detail(status: StatusCode, message: &str) -> ApiError {
    ApiError::detail(status, message)
}

fn forbidden() -> ApiError {
    detail(StatusCode::FORBIDDEN, "Not enough permissions")
}

fn user_not_found() -> ApiError {
    detail(StatusCode::NOT_FOUND, "User not found")
}

/// Seed 002 token reply.
#[derive(Serialize, ToSchema)]
pub struct CoreTokens {
    access_token: String,
    refresh_token: String,
    #[schema(pattern = "^bearer$")]
    token_type: &'static str,
}

fn pair_json(pair: &TokenPair) -> CoreTokens {
    CoreTokens {
        access_token: pair.access.token.clone(),
        refresh_token: pair.refresh.token.clone(),
        token_type: "bearer",
    }
}

/// Seed 002 page of users.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    items: Vec<CoreUser>,
    total: i64,
    page: i64,
    size: i64,
    pages: i64,
}

fn actor(id: i64) -> EventMetadata {
    EventMetadata {
        actor: Some(id),
        ..Default::default()
    }
}

/// Domain and uniqueness failures of account commands, in the core shape.
fn command_error(err: CommandError<AccountError>) -> ApiError {
    if super::email_taken(&err) {
        return detail(StatusCode::CONFLICT, "Email already registered");
    }
    if err.is_unique_violation("accounts_username_key") {
        return detail(StatusCode::CONFLICT, "Username already registered");
    }
    match err {
        CommandError::Domain(e) => match e {
            AccountError::NotFound | AccountError::Gone => user_not_found(),
            AccountError::AlreadyRegistered => {
                detail(StatusCode::CONFLICT, "Email already registered")
            }
            AccountError::InvalidEmail => ApiError::validation(
                NS,
                &["body", "email"],
                "value is not a valid email address",
                "value_error",
            ),
            AccountError::PasswordTooShort => password_too_short(),
            AccountError::InvalidGender => {
                ApiError::validation(NS, &["body", "gender"], "Invalid gender", "value_error")
            }
            AccountError::InvalidBirthdate => ApiError::validation(
                NS,
                &["body", "birthdate"],
                "Invalid birthdate",
                "value_error",
            ),
            AccountError::PushNotAgreed | AccountError::InvalidPushToken => {
                detail(StatusCode::CONFLICT, "Update failed")
            }
        },
        CommandError::Conflict(_) => detail(StatusCode::CONFLICT, "Conflicting update, try again"),
        other => ApiError::command_failed(NS, other),
    }
}

fn password_too_short() -> ApiError {
    ApiError::validation(
        NS,
        &["body", "password"],
        "String should have at least 8 characters",
        "string_too_short",
    )
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["body", "role"],
            "Input should be 'superadmin', 'admin', 'manager' or 'user'",
            "enum",
        )
    })
}

// ---------- /api/v1/auth ----------

#[derive(Deserialize, ToSchema)]
#[schema(as = CoreRegisterBody)]
pub struct RegisterBody {
    #[schema(value_type = crate::openapi::patterns::Email)]
    email: String,
    #[schema(min_length = 8)]
    password: String,
    #[serde(default)]
    full_name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = tags::CORE, request_body = RegisterBody,
    responses((status = 201, body = CoreTokens), (status = 409, description = "Email already registered", body = Detail)))]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterBody>,
) -> Result<Response, ApiError> {
    let profile = AccountProfile {
        email: body.email,
        full_name: body.full_name,
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
    .map_err(command_error)?;
    let pair = refresh::issue_pair_for(&state, id, Role::User)
        .await
        .map_err(internal)?;
    Ok((StatusCode::CREATED, Json(pair_json(&pair))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CoreLoginBody)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = tags::CORE, request_body = LoginBody,
    responses((status = 200, body = CoreTokens), (status = 401, description = "Wrong email or password, or an inactive account", body = Detail),
        (status = 429, description = "Too many failed logins", body = Detail, headers(("Retry-After" = u64)))))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Json<CoreTokens>, ApiError> {
    let account = login::authenticate(&state, Identifier::Email(&body.email), &body.password, &ip)
        .await
        .map_err(|err| match err {
            LoginError::Throttled { retry_after_secs } => {
                ApiError::too_many_requests(NS, retry_after_secs)
            }
            LoginError::Inactive => detail(StatusCode::UNAUTHORIZED, "Inactive user"),
            LoginError::Database(e) => internal(e),
            _ => detail(StatusCode::UNAUTHORIZED, "Incorrect email or password"),
        })?;
    let pair = refresh::issue_pair_for(&state, account.id, account.role())
        .await
        .map_err(internal)?;
    Ok(Json(pair_json(&pair)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CoreRefreshBody)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Rotates: the refresh token sent is revoked; a revoked one revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = tags::CORE, request_body = RefreshBody,
    responses((status = 200, body = CoreTokens), (status = 401, description = "Invalid, expired or revoked refresh token", body = Detail)))]
pub async fn refresh_tokens(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<CoreTokens>, ApiError> {
    match refresh::rotate(&state, &body.refresh_token).await {
        Ok((_, pair)) => Ok(Json(pair_json(&pair))),
        Err(RefreshError::Database(e)) => Err(internal(e)),
        Err(_) => Err(detail(StatusCode::UNAUTHORIZED, "Invalid refresh token")),
    }
}

/// Revokes every refresh token of the account.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = tags::CORE, security(("bearer" = [])),
    responses((status = 204, description = "Signed out")))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    super::revoke_sessions(&state.store, caller.account_id)
        .await
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- /api/v1/users ----------

async fn load_live(state: &AppState, id: i64) -> Result<AccountRow, ApiError> {
    read::live_by_id(state.pool(), id)
        .await
        .map_err(internal)?
        .ok_or_else(user_not_found)
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = tags::CORE, security(("bearer" = [])),
    responses((status = 200, body = CoreUser), (status = 404, description = "User not found", body = Detail)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<CoreUser>, ApiError> {
    Ok(Json(
        load_live(&state, caller.account_id).await?.core_json(),
    ))
}

/// Fields anyone may change on their own profile; `role` and `is_active` are caught to refuse.
#[derive(Deserialize, Default, ToSchema)]
pub struct ProfilePatch {
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Email>)]
    email: Option<String>,
    #[serde(default)]
    #[schema(min_length = 8)]
    password: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Role>)]
    role: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
}

impl ProfilePatch {
    fn changes(&self) -> ProfileChanges {
        ProfileChanges {
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            organization: self.organization.clone(),
            avatar_url: self.avatar_url.clone(),
            phone: self.phone.clone(),
            ..Default::default()
        }
    }
}

/// Applies a patch as one command: profile, password, role and activity change together or
/// not at all.
async fn apply_patch(
    state: &AppState,
    actor_id: i64,
    target: i64,
    patch: &ProfilePatch,
    role: Option<Role>,
) -> Result<(), ApiError> {
    let password_hash = match &patch.password {
        Some(p) if p.chars().count() < crate::auth::password::MIN_PASSWORD_LEN => {
            return Err(password_too_short())
        }
        Some(p) => Some((p.chars().count(), crate::auth::password::hash(p).await)),
        None => None,
    };
    let changes = patch.changes();
    let is_active = patch.is_active;
    let now = Utc::now();
    super::change(&state.store, actor(actor_id), target, |account| {
        let mut events = domain::decide_change_profile(account, changes.clone(), now)?;
        if let Some((len, hash)) = &password_hash {
            events.extend(domain::decide_change_password(
                account,
                *len,
                hash.clone(),
                now,
            )?);
        }
        if let Some(role) = role {
            events.extend(domain::decide_change_role(account, role, now)?);
        }
        if let Some(active) = is_active {
            events.extend(domain::decide_set_active(account, active, now)?);
        }
        Ok(events)
    })
    .await
    .map_err(command_error)?;
    if is_active == Some(false) {
        super::revoke_sessions(&state.store, target)
            .await
            .map_err(internal)?;
    }
    Ok(())
}

/// `role` and `is_active` cannot be changed here (403, nothing changes).
#[utoipa::path(patch, path = "/api/v1/users/me", tag = tags::CORE, security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, body = CoreUser), (status = 403, description = "role or is_active sent", body = Detail),
        (status = 404, description = "User not found", body = Detail), (status = 409, description = "Email already registered", body = Detail)))]
pub async fn patch_me(
    State(state): State<AppState>,
    caller: Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<CoreUser>, ApiError> {
    if patch.role.is_some() || patch.is_active.is_some() {
        return Err(detail(
            StatusCode::FORBIDDEN,
            "You cannot change your own role or active status",
        ));
    }
    apply_patch(&state, caller.account_id, caller.account_id, &patch, None).await?;
    Ok(Json(
        load_live(&state, caller.account_id).await?.core_json(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(minimum = 1)]
    #[serde(default = "one")]
    page: i64,
    /// Page size, 1 to 100.
    #[serde(default = "twenty")]
    #[param(minimum = 1, maximum = 100)]
    size: i64,
}

fn one() -> i64 {
    1
}
fn twenty() -> i64 {
    20
}

/// Admins and superadmins.
#[utoipa::path(get, path = "/api/v1/users", tag = tags::CORE, security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = UserPage), (status = 403, description = "Not enough permissions", body = Detail)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    if !caller.is_admin() {
        return Err(forbidden());
    }
    if q.page < 1 {
        return Err(ApiError::validation(
            NS,
            &["query", "page"],
            "Input should be greater than or equal to 1",
            "greater_than_equal",
        ));
    }
    if !(1..=100).contains(&q.size) {
        return Err(ApiError::validation(
            NS,
            &["query", "size"],
            "Input should be less than or equal to 100",
            "less_than_equal",
        ));
    }
    let (rows, total) = read::page(state.pool(), q.page, q.size)
        .await
        .map_err(internal)?;
    let pages = (total + q.size - 1) / q.size;
    Ok(Json(UserPage {
        items: rows.iter().map(AccountRow::core_json).collect(),
        total,
        page: q.page,
        size: q.size,
        pages,
    }))
}

/// Admins and superadmins only; a superadmin target needs a superadmin caller.
async fn admin_target(state: &AppState, caller: &Caller, id: i64) -> Result<AccountRow, ApiError> {
    if !caller.is_admin() {
        return Err(forbidden());
    }
    let target = load_live(state, id).await?;
    if target.role() == Role::Superadmin && caller.role != Role::Superadmin {
        return Err(forbidden());
    }
    Ok(target)
}

fn check_grant(caller: &Caller, role: Role) -> Result<(), ApiError> {
    if role.is_admin() && caller.role != Role::Superadmin {
        return Err(forbidden());
    }
    Ok(())
}

/// Admins and superadmins.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = CoreUser), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "User not found", body = Detail)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<CoreUser>, ApiError> {
    if !caller.is_admin() {
        return Err(forbidden());
    }
    Ok(Json(load_live(&state, id).await?.core_json()))
}

/// Admins and superadmins; they may change role (admin roles only by a superadmin) and
/// `is_active` too.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")), request_body = ProfilePatch,
    responses((status = 200, body = CoreUser), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "User not found", body = Detail), (status = 409, description = "Email already registered", body = Detail)))]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(patch): Json<ProfilePatch>,
) -> Result<Json<CoreUser>, ApiError> {
    admin_target(&state, &caller, id).await?;
    let role = patch.role.as_deref().map(parse_role).transpose()?;
    if let Some(role) = role {
        check_grant(&caller, role)?;
    }
    // As on `/users/me`: an admin cannot take away its own role or access (and lock itself
    // out, possibly leaving no superadmin).
    if id == caller.account_id
        && (role.is_some_and(|r| r != caller.role) || patch.is_active == Some(false))
    {
        return Err(detail(
            StatusCode::FORBIDDEN,
            "You cannot change your own role or active status",
        ));
    }
    apply_patch(&state, caller.account_id, id, &patch, role).await?;
    Ok(Json(load_live(&state, id).await?.core_json()))
}

/// Soft delete; admins and superadmins.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = tags::CORE, security(("bearer" = [])),
    params(("id" = i64, Path, description = "Account id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "User not found", body = Detail)))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    admin_target(&state, &caller, id).await?;
    if id == caller.account_id {
        return Err(detail(StatusCode::FORBIDDEN, "You cannot delete yourself"));
    }
    super::delete(&state.store, actor(caller.account_id), id)
        .await
        .map_err(command_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUserBody {
    #[schema(value_type = crate::openapi::patterns::Email)]
    email: String,
    #[schema(min_length = 8)]
    password: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::patterns::Role>)]
    role: Option<String>,
    #[serde(default)]
    full_name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    organization: Option<String>,
}

/// Admins and superadmins; admin roles only by a superadmin.
#[utoipa::path(post, path = "/api/v1/users", tag = tags::CORE, security(("bearer" = [])), request_body = CreateUserBody,
    responses((status = 201, body = CoreUser), (status = 403, description = "Not enough permissions", body = Detail),
        (status = 409, description = "Email already registered", body = Detail)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateUserBody>,
) -> Result<Response, ApiError> {
    if !caller.is_admin() {
        return Err(forbidden());
    }
    let role = body
        .role
        .as_deref()
        .map(parse_role)
        .transpose()?
        .unwrap_or(Role::User);
    check_grant(&caller, role)?;
    let profile = AccountProfile {
        email: body.email,
        full_name: body.full_name,
        phone: body.phone,
        organization: body.organization,
        ..Default::default()
    };
    let id = super::register(
        &state.store,
        actor(caller.account_id),
        profile,
        &body.password,
        role,
    )
    .await
    .map_err(command_error)?;
    let row = load_live(&state, id).await?;
    Ok((StatusCode::CREATED, Json(row.core_json())).into_response())
}
