//! Refresh-token sessions shared by every door: issue a pair, rotate on use (a reused rotated
//! token revokes its whole family), check without rotating (KooDTX), revoke all on logout.
//! Only the SHA-256 of each refresh token's jti is stored.

use super::{IssuedToken, JwtKeys, TokenError, TokenType};
use crate::state::AppState;
use chrono::{TimeZone, Utc};
use fleetstream_events::Role;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("refresh token invalid")]
    Invalid,
    #[error("refresh token expired")]
    Expired,
    #[error("not a refresh token")]
    WrongType,
    #[error("refresh token reused; family revoked")]
    Reused,
    #[error("account unusable")]
    AccountUnusable,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<TokenError> for RefreshError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Expired => Self::Expired,
            TokenError::Invalid => Self::Invalid,
            TokenError::WrongType => Self::WrongType,
        }
    }
}

fn token_hash(jti: &Uuid) -> String {
    hex::encode(Sha256::digest(jti.as_bytes()))
}

/// Issues an access token and a refresh token (a new family unless `family` continues one) and
/// records the refresh token in `conn`'s transaction.
pub async fn issue_pair(
    conn: &mut PgConnection,
    jwt: &JwtKeys,
    account_id: i64,
    role: Role,
    family: Option<Uuid>,
) -> Result<TokenPair, sqlx::Error> {
    let family = family.unwrap_or_else(Uuid::new_v4);
    let access = jwt.issue(account_id, role.as_str(), TokenType::Access, None);
    let refresh = jwt.issue(account_id, role.as_str(), TokenType::Refresh, Some(family));
    let expires_at = Utc
        .timestamp_opt(refresh.claims.exp, 0)
        .single()
        .unwrap_or_else(Utc::now);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, account_id, family_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(&refresh.claims.jti))
    .bind(account_id)
    .bind(family)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(TokenPair { access, refresh })
}

/// `issue_pair` on its own connection.
pub async fn issue_pair_for(
    state: &AppState,
    account_id: i64,
    role: Role,
) -> Result<TokenPair, sqlx::Error> {
    let mut conn = state.pool().acquire().await?;
    issue_pair(&mut conn, &state.jwt, account_id, role, None).await
}

/// The account's role when it may still use tokens.
async fn usable_role(conn: &mut PgConnection, account_id: i64) -> Result<Role, RefreshError> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT role, is_active FROM accounts WHERE id = $1 AND deleted_at IS NULL")
            .bind(account_id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some((role, true)) => Role::parse(&role).ok_or(RefreshError::AccountUnusable),
        _ => Err(RefreshError::AccountUnusable),
    }
}

/// Trades a refresh token for a new pair in the same family; the presented token is revoked.
/// Presenting a revoked token revokes the whole family.
pub async fn rotate(state: &AppState, token: &str) -> Result<(i64, TokenPair), RefreshError> {
    let claims = state.jwt.verify(token, TokenType::Refresh)?;
    let account_id = claims.account_id().ok_or(RefreshError::Invalid)?;
    let hash = token_hash(&claims.jti);
    let mut tx = state.pool().begin().await?;
    let row: Option<(Uuid, Option<chrono::DateTime<Utc>>)> = sqlx::query_as(
        "SELECT family_id, revoked_at FROM refresh_tokens WHERE token_hash = $1 AND account_id = $2 FOR UPDATE",
    )
    .bind(&hash)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((family, revoked_at)) = row else {
        return Err(RefreshError::Invalid);
    };
    if revoked_at.is_some() {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::warn!(account_id, %family, "rotated refresh token reused; family revoked");
        return Err(RefreshError::Reused);
    }
    let role = usable_role(&mut tx, account_id).await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1")
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    let pair = issue_pair(&mut tx, &state.jwt, account_id, role, Some(family)).await?;
    tx.commit().await?;
    Ok((account_id, pair))
}

/// Checks a refresh token without rotating it (the KooDTX door); returns the account and role.
pub async fn check(state: &AppState, token: &str) -> Result<(i64, Role), RefreshError> {
    let claims = state.jwt.verify(token, TokenType::Refresh)?;
    let account_id = claims.account_id().ok_or(RefreshError::Invalid)?;
    let mut conn = state.pool().acquire().await?;
    let live: Option<bool> = sqlx::query_scalar(
        "SELECT revoked_at IS NULL FROM refresh_tokens WHERE token_hash = $1 AND account_id = $2",
    )
    .bind(token_hash(&claims.jti))
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?;
    match live {
        Some(true) => Ok((account_id, usable_role(&mut conn, account_id).await?)),
        _ => Err(RefreshError::Invalid),
    }
}

/// Revokes every live refresh token of the account (logout, deactivation, withdrawal).
pub async fn revoke_all(conn: &mut PgConnection, account_id: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
    )
    .bind(account_id)
    .execute(conn)
    .await?
    .rows_affected())
}
