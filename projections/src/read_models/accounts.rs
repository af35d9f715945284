//! Inline read model of accounts: backs logins, token checks and uniqueness.

use crate::{Mode, Projection, ProjectionError};
use async_trait::async_trait;
use fleetstream_events::{AccountEvent, StoredEvent};
use sqlx::PgConnection;

pub struct Accounts;

#[async_trait]
impl Projection for Accounts {
    fn name(&self) -> &'static str {
        "accounts"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["accounts"]
    }
    fn mode(&self) -> Mode {
        Mode::Inline
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        for stored in events {
            let Some(event) = stored.decode::<AccountEvent>() else {
                continue;
            };
            match event? {
                AccountEvent::AccountRegistered {
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
            }
        }
        Ok(())
    }
}
