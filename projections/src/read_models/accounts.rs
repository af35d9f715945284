//! Inline read model of accounts: backs logins, token checks and uniqueness.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::privacy::unless_erased;
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
            // A replay of an erased account's registration: its personal fields read as erased
            // and are stored as NULL, as the erasure left them.
            sqlx::query(include_str!("../../sql/accounts_insert.sql"))
                .bind(account_id)
                .bind(unless_erased(Some(&p.email)))
                .bind(kept(&p.username))
                .bind(&password_hash)
                .bind(role.as_str())
                .bind(kept(&p.full_name))
                .bind(kept(&p.phone))
                .bind(kept(&p.organization))
                .bind(kept(&p.first_name))
                .bind(kept(&p.last_name))
                .bind(kept(&p.birthdate))
                .bind(kept(&p.gender))
                .bind(&p.register_type)
                .bind(kept(&p.national_code))
                .bind(&p.device_id)
                .bind(p.is_push_agree)
                .bind(p.is_marketing_agree)
                .bind(registered_at)
                .bind(&p.email_key)
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
                .bind(kept(&c.email))
                .bind(kept(&c.username))
                .bind(kept(&c.full_name))
                .bind(kept(&c.organization))
                .bind(kept(&c.avatar_url))
                .bind(kept(&c.first_name))
                .bind(kept(&c.last_name))
                .bind(kept(&c.birthdate))
                .bind(kept(&c.gender))
                .bind(kept(&c.phone))
                .bind(changed_at)
                .bind(&c.email_key)
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
        // Both end the account and erase it (its data key is destroyed with these events):
        // the row keeps ids, role, flags and times, never a personal value.
        AccountDeleted {
            account_id,
            deleted_at: at,
        } => erase(conn, account_id, at, false).await?,
        AccountWithdrawn {
            account_id,
            withdrawn_at: at,
        } => erase(conn, account_id, at, true).await?,
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
                .bind(unless_erased(Some(&push_token)))
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
            .bind(unless_erased(Some(&phone)))
            .bind(changed_at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

fn kept(value: &Option<String>) -> Option<&str> {
    unless_erased(value.as_deref())
}

async fn erase(
    conn: &mut PgConnection,
    account_id: i64,
    at: chrono::DateTime<chrono::Utc>,
    withdrawn: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("../../sql/accounts_erase.sql"))
        .bind(account_id)
        .bind(at)
        .bind(withdrawn)
        .execute(&mut *conn)
        .await?;
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
