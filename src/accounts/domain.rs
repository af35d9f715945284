//! Pure decisions and state of the account aggregate.

use crate::es::Aggregate;
use chrono::{DateTime, Utc};
use fleetstream_events::{AccountEvent, AccountProfile, Role};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub id: Option<i64>,
    pub role: Option<Role>,
    pub email: String,
}

impl Aggregate for Account {
    type Event = AccountEvent;

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountRegistered {
                account_id,
                role,
                profile,
                ..
            } => {
                self.id = Some(*account_id);
                self.role = Some(*role);
                self.email = profile.email.clone();
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    AlreadyRegistered,
    InvalidEmail,
}

#[derive(Debug, Clone)]
pub struct RegisterAccount {
    pub account_id: i64,
    pub role: Role,
    pub password_hash: String,
    pub profile: AccountProfile,
    pub now: DateTime<Utc>,
}

pub fn decide_register(
    state: &Account,
    cmd: RegisterAccount,
) -> Result<Vec<AccountEvent>, AccountError> {
    if state.id.is_some() {
        return Err(AccountError::AlreadyRegistered);
    }
    let email = cmd.profile.email.trim().to_owned();
    if !is_plausible_email(&email) {
        return Err(AccountError::InvalidEmail);
    }
    let mut profile = cmd.profile;
    profile.email = email;
    Ok(vec![AccountEvent::AccountRegistered {
        account_id: cmd.account_id,
        role: cmd.role,
        password_hash: cmd.password_hash,
        profile,
        registered_at: cmd.now,
    }])
}

pub fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
