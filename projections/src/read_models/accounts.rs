//! Inline read model of accounts: backs logins, token checks and uniqueness.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{AccountEvent, StoredEvent};
use sqlx::PgConnection;

pub struct Accounts;

#[async_trait]
impl ReadModel for Accounts {
    type Event = AccountEvent;
    const NAME: &'static str = "accounts";
    const TABLES: &'static [&'static str] = &["accounts"];
    const MODE: Mode = Mode::Inline;

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: AccountEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        Ok(apply_one(conn, event).await?)
    }
}

async fn apply_one(conn: &mut PgConnection, event: AccountEvent) -> Result<(), sqlx::Error> {
    use AccountEvent::*;
    match event {
        AccountRegistered {
            account_id,
            role,
            password_hash,
            profile: p,
            registered_at,
        } => {
            sqlx::query(include_str!("../../sql/accounts_insert.sql"))
                .bind(account_id)
                .bind(&p.email)
                .bind(&p.username)
                .bind(&password_hash)
                .bind(role.as_str())
                .bind(&p.full_name)
                .bind(&p.phone)
                .bind(&p.organization)
                .bind(&p.first_name)
                .bind(&p.last_name)
                .bind(&p.birthdate)
                .bind(&p.gender)
                .bind(&p.register_type)
                .bind(&p.national_code)
                .bind(&p.device_id)
                .bind(p.is_push_agree)
                .bind(p.is_marketing_agree)
                .bind(registered_at)
                .execute(&mut *conn)
                .await?;
        }
        ProfileChanged {
            account_id,
            changes: c,
            changed_at,
        } => {
            sqlx::query(include_str!("../../sql/accounts_update_profile.sql"))
                .bind(account_id)
                .bind(&c.email)
                .bind(&c.username)
                .bind(&c.full_name)
                .bind(&c.organization)
                .bind(&c.avatar_url)
                .bind(&c.first_name)
                .bind(&c.last_name)
                .bind(&c.birthdate)
                .bind(&c.gender)
                .bind(&c.phone)
                .bind(changed_at)
                .execute(&mut *conn)
                .await?;
        }
        PasswordChanged {
            account_id,
            password_hash,
            changed_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1",
            )
            .bind(account_id)
            .bind(password_hash)
            .bind(changed_at)
            .execute(&mut *conn)
            .await?;
        }
        RoleChanged {
            account_id,
            role,
            changed_at,
        } => {
            sqlx::query("UPDATE accounts SET role = $2, updated_at = $3 WHERE id = $1")
                .bind(account_id)
                .bind(role.as_str())
                .bind(changed_at)
                .execute(&mut *conn)
                .await?;
        }
        AccountActivated {
            account_id,
            activated_at: at,
        } => set_active(conn, account_id, true, at).await?,
        AccountDeactivated {
            account_id,
            deactivated_at: at,
        } => set_active(conn, account_id, false, at).await?,
        AccountDeleted {
            account_id,
            deleted_at,
        } => {
            sqlx::query("UPDATE accounts SET deleted_at = $2, updated_at = $2 WHERE id = $1")
                .bind(account_id)
                .bind(deleted_at)
                .execute(&mut *conn)
                .await?;
        }
        AccountWithdrawn {
            account_id,
            withdrawn_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET deleted_at = $2, withdrawn_at = $2, push_token = NULL, updated_at = $2 WHERE id = $1",
            )
            .bind(account_id)
            .bind(withdrawn_at)
            .execute(&mut *conn)
            .await?;
        }
        PolicyChanged {
            account_id,
            is_push_agree,
            is_marketing_agree,
            changed_at,
        } => {
            sqlx::query(include_str!("../../sql/accounts_update_policy.sql"))
                .bind(account_id)
                .bind(is_push_agree)
                .bind(is_marketing_agree)
                .bind(changed_at)
                .execute(&mut *conn)
                .await?;
        }
        NotificationSettingsChanged {
            account_id,
            settings: s,
            changed_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET is_device_muted = $2, is_device_alim_talk_enabled = $3, is_basestation_alert_enabled = $4, updated_at = $5 WHERE id = $1",
            )
            .bind(account_id)
            .bind(s.is_device_muted)
            .bind(s.is_device_alim_talk_enabled)
            .bind(s.is_basestation_alert_enabled)
            .bind(changed_at)
            .execute(&mut *conn)
            .await?;
        }
        PushTokenSet {
            account_id,
            push_token,
            set_at,
        } => {
            sqlx::query("UPDATE accounts SET push_token = $2, updated_at = $3 WHERE id = $1")
                .bind(account_id)
                .bind(push_token)
                .bind(set_at)
                .execute(&mut *conn)
                .await?;
        }
        PhoneChanged {
            account_id,
            phone,
            changed_at,
        } => {
            sqlx::query(
                "UPDATE accounts SET phone = $2, is_phone_number_checked = TRUE, updated_at = $3 WHERE id = $1",
            )
            .bind(account_id)
            .bind(phone)
            .bind(changed_at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn set_active(
    conn: &mut PgConnection,
    account_id: i64,
    active: bool,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET is_active = $2, updated_at = $3 WHERE id = $1")
        .bind(account_id)
        .bind(active)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
