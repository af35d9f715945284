//! Password login shared by every door: find the account, apply throttling, verify.

use super::throttle::ClientIp;
use crate::accounts::read::{self, AccountRow};
use crate::state::AppState;

/// How the door names the account.
#[derive(Debug, Clone, Copy)]
pub enum Identifier<'a> {
    Email(&'a str),
    Username(&'a str),
    /// Seed 004: a username, or an email when no username matches.
    UsernameOrEmail(&'a str),
}

impl Identifier<'_> {
    fn raw(&self) -> &str {
        match self {
            Self::Email(s) | Self::Username(s) | Self::UsernameOrEmail(s) => s,
        }
    }
}

#[derive(Debug)]
pub enum LoginError {
    NotFound,
    /// Deleted or withdrawn.
    Deleted,
    Inactive,
    WrongPassword,
    Throttled {
        retry_after_secs: u64,
    },
    Database(sqlx::Error),
}

pub async fn authenticate(
    state: &AppState,
    identifier: Identifier<'_>,
    password: &str,
    ip: &ClientIp,
) -> Result<AccountRow, LoginError> {
    let account = match identifier {
        Identifier::Email(email) => {
            read::by_email(state.pool(), state.store.keyring(), email).await
        }
        Identifier::Username(name) => read::by_username(state.pool(), name).await,
        Identifier::UsernameOrEmail(name) => match read::by_username(state.pool(), name).await {
            Ok(None) => read::by_email(state.pool(), state.store.keyring(), name).await,
            other => other,
        },
    }
    .map_err(LoginError::Database)?;
    let account_key = account
        .as_ref()
        .map(|a| a.id.to_string())
        .unwrap_or_else(|| identifier.raw().to_owned());
    if let Some(secs) = state.throttle.retry_after(Some(&account_key), &ip.0) {
        return Err(LoginError::Throttled {
            retry_after_secs: secs,
        });
    }
    let Some(account) = account else {
        // An unknown name counts against the IP only.
        crate::auth::password::verify(password, DUMMY_HASH).await;
        state.throttle.record_failure(None, &ip.0);
        return Err(LoginError::NotFound);
    };
    if account.deleted_at.is_some() {
        return Err(LoginError::Deleted);
    }
    if !crate::auth::password::verify(password, &account.password_hash).await {
        state.throttle.record_failure(Some(&account_key), &ip.0);
        return Err(LoginError::WrongPassword);
    }
    if !account.is_active {
        return Err(LoginError::Inactive);
    }
    // The account that just proved its password acts in what the login records.
    crate::es::context::set_actor(account.id);
    Ok(account)
}

/// Verified against for unknown accounts so the reply time does not reveal which names exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1xyhTh3rdkq3uWhXxrNNGHfd2Nwaf+VkrWcQPYIqTUk";
