//! Lookups in the accounts read model and the reply shapes built from a row.

use chrono::{DateTime, Utc};
use fleetstream_events::privacy::{self, Keyring};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub organization: Option<String>,
    pub avatar_url: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birthdate: Option<String>,
    pub gender: Option<String>,
    pub register_type: Option<String>,
    pub national_code: Option<String>,
    pub device_id: Option<String>,
    pub is_push_agree: bool,
    pub push_agreed_at: Option<DateTime<Utc>>,
    pub is_marketing_agree: bool,
    pub marketing_agreed_at: Option<DateTime<Utc>>,
    pub is_device_muted: bool,
    pub is_device_alim_talk_enabled: bool,
    pub is_basestation_alert_enabled: bool,
    pub push_token: Option<String>,
    pub is_phone_number_checked: bool,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

// An erased account's e-mail is NULL; replies show it as empty.
const SELECT: &str = "SELECT id, COALESCE(email, '') AS email, username, password_hash, role, is_active, is_verified, \
    full_name, phone, organization, avatar_url, first_name, last_name, birthdate, gender, \
    register_type, national_code, device_id, is_push_agree, push_agreed_at, is_marketing_agree, \
    marketing_agreed_at, is_device_muted, is_device_alim_talk_enabled, \
    is_basestation_alert_enabled, push_token, is_phone_number_checked, password_changed_at, \
    created_at, updated_at, deleted_at FROM accounts";

/// Any account with this id, deleted ones included.
pub async fn by_id(pool: &PgPool, id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A live (not deleted) account.
pub async fn live_by_id(pool: &PgPool, id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    Ok(by_id(pool, id).await?.filter(|a| a.deleted_at.is_none()))
}

/// The account holding this e-mail, or the erased one that held it (found by the address's
/// keyed hash: its row keeps no e-mail).
pub async fn by_email(
    pool: &PgPool,
    keyring: Option<&Keyring>,
    email: &str,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let email_key = keyring.map(|k| privacy::email_key(k, email));
    sqlx::query_as(&format!(
        "{SELECT} WHERE lower(email) = lower($1) OR email_key = $2 ORDER BY deleted_at NULLS FIRST LIMIT 1"
    ))
    .bind(email.trim())
    .bind(email_key)
    .fetch_optional(pool)
    .await
}

pub async fn by_username(pool: &PgPool, name: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE lower(username) = lower($1)"))
        .bind(name.trim())
        .fetch_optional(pool)
        .await
}

/// One page of live accounts by id, and the total.
pub async fn page(
    pool: &PgPool,
    page: i64,
    size: i64,
) -> Result<(Vec<AccountRow>, i64), sqlx::Error> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts WHERE deleted_at IS NULL")
        .fetch_one(pool)
        .await?;
    let rows = sqlx::query_as(&format!(
        "{SELECT} WHERE deleted_at IS NULL ORDER BY id LIMIT $1 OFFSET $2"
    ))
    .bind(size)
    .bind((page - 1).saturating_mul(size))
    .fetch_all(pool)
    .await?;
    Ok((rows, total))
}

/// Phone numbers in use by a live account.
pub async fn phone_taken(pool: &PgPool, phone: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE phone = $1 AND deleted_at IS NULL)",
    )
    .bind(phone)
    .fetch_one(pool)
    .await
}

/// Seed 002 user shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoreUser {
    pub id: i64,
    pub email: String,
    #[schema(pattern = "^(superadmin|admin|manager|user)$")]
    pub role: String,
    pub is_active: bool,
    pub is_verified: bool,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub organization: Option<String>,
    pub avatar_url: String,
    pub created_at: String,
}

/// Seed 003 user shape (never a password field).
#[derive(Debug, Serialize, ToSchema)]
pub struct KoodtxUser {
    pub id: i64,
    pub username: Option<String>,
    pub email: String,
    pub device_id: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn naive(ts: DateTime<Utc>) -> String {
    crate::http::time::format(crate::http::Namespace::Core, ts)
}

fn koodtx(ts: DateTime<Utc>) -> String {
    crate::http::time::format(crate::http::Namespace::KooDtx, ts)
}

impl AccountRow {
    pub fn role(&self) -> fleetstream_events::Role {
        fleetstream_events::Role::parse(&self.role).unwrap_or(fleetstream_events::Role::User)
    }

    pub fn core_json(&self) -> CoreUser {
        CoreUser {
            id: self.id,
            email: self.email.clone(),
            role: self.role.clone(),
            is_active: self.is_active,
            is_verified: self.is_verified,
            full_name: self.full_name.clone(),
            phone: self.phone.clone(),
            organization: self.organization.clone(),
            avatar_url: self.avatar_url.clone().unwrap_or_default(),
            created_at: naive(self.created_at),
        }
    }

    pub fn koodtx_json(&self) -> KoodtxUser {
        KoodtxUser {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            device_id: self.device_id.clone(),
            is_active: self.is_active,
            created_at: koodtx(self.created_at),
            updated_at: koodtx(self.updated_at),
        }
    }
}

/// True when `id` names a live (not deleted) account: every id field that must name an account
/// (a device's `owner_id`, …) is checked with this before it enters the log.
pub async fn account_exists(conn: &mut sqlx::PgConnection, id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(conn)
    .await
}
