//! The `account` aggregate: one identity behind every login door.

pub mod domain;

use crate::es::{next_id, CommandError, EventStore};
use chrono::Utc;
use domain::{Account, AccountError, RegisterAccount};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{AccountEvent, AccountProfile, DomainEvent, EventMetadata, Role};

/// Registers an account: takes an id, decides, appends; the inline accounts projection enforces
/// unique email/username/device id in the same transaction.
pub async fn register(
    store: &EventStore,
    metadata: EventMetadata,
    profile: AccountProfile,
    password: &str,
    role: Role,
) -> Result<i64, CommandError<AccountError>> {
    let password_hash = crate::auth::password::hash(password);
    let mut uow = store.begin(metadata).await?;
    let account_id = next_id(uow.conn(), "account_id_seq").await?;
    let events = domain::decide_register(
        &Account::default(),
        RegisterAccount {
            account_id,
            role,
            password_hash,
            profile,
            now: Utc::now(),
        },
    )
    .map_err(CommandError::Domain)?;
    uow.stage(
        &AccountEvent::stream_id(account_id),
        ExpectedVersion::NoStream,
        &events,
    );
    uow.commit().await?;
    Ok(account_id)
}
