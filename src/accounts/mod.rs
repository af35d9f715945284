//! The `account` aggregate: one identity behind every login door.

pub mod core;
pub mod domain;
pub mod drf;
pub mod koodtx;
pub mod nueyne;
pub mod read;
pub mod sms;
pub mod sms_limit;

use crate::es::{next_id, CommandError, EventStore, UnitOfWork};
use chrono::Utc;
use domain::{Account, AccountError, RegisterAccount};
use fleetstream_events::privacy::{self, normalized_phone};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{AccountEvent, AccountProfile, DomainEvent, EventMetadata, Role};

/// Whether the command failed on an e-mail that is taken: held by an account, or kept (as its
/// keyed hash) by an erased one.
pub fn email_taken<E>(err: &CommandError<E>) -> bool {
    err.is_unique_violation("accounts_email_key")
        || err.is_unique_violation("accounts_email_digest_key")
}

/// Registers an account: takes an id, decides, appends; the inline accounts projection enforces
/// unique email/username/device id in the same transaction.
pub async fn register(
    store: &EventStore,
    metadata: EventMetadata,
    profile: AccountProfile,
    password: &str,
    role: Role,
) -> Result<i64, CommandError<AccountError>> {
    if password.chars().count() < crate::auth::password::MIN_PASSWORD_LEN {
        return Err(CommandError::Domain(AccountError::PasswordTooShort));
    }
    let password_hash = crate::auth::password::hash(password).await;
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

/// Runs one decision (or several, concatenated) against an account's stream.
pub async fn change(
    store: &EventStore,
    metadata: EventMetadata,
    account_id: i64,
    decide: impl Fn(&Account) -> Result<Vec<AccountEvent>, AccountError>,
) -> Result<Account, CommandError<AccountError>> {
    store
        .execute::<Account, AccountError>(account_id, metadata, decide)
        .await
        .map(|(state, _)| state)
}

/// Withdrawal (seed 001 `DELETE root-user`): the account leaves every door, its patients end
/// with it, all its refresh tokens are revoked and its personal data is erased (its data keys
/// destroyed), in one transaction.
pub async fn withdraw(
    store: &EventStore,
    metadata: EventMetadata,
    account_id: i64,
) -> Result<(), CommandError<AccountError>> {
    end(store, metadata, account_id, Ending::Withdrawal).await
}

/// Administrator delete (seed 002 `DELETE /users/{id}`): the account ends, its sessions are
/// revoked and its personal data is erased, in one transaction.
pub async fn delete(
    store: &EventStore,
    metadata: EventMetadata,
    account_id: i64,
) -> Result<(), CommandError<AccountError>> {
    end(store, metadata, account_id, Ending::Deletion).await
}

enum Ending {
    Withdrawal,
    Deletion,
}

async fn end(
    store: &EventStore,
    metadata: EventMetadata,
    account_id: i64,
    ending: Ending,
) -> Result<(), CommandError<AccountError>> {
    let stream_id = AccountEvent::stream_id(account_id);
    let mut uow = store.begin(metadata).await?;
    let (state, version) = uow.load::<Account>(&stream_id).await?;
    let now = Utc::now();
    let events = match ending {
        Ending::Withdrawal => domain::decide_withdraw(&state, now),
        Ending::Deletion => domain::decide_delete(&state, now),
    }
    .map_err(CommandError::Domain)?;
    uow.stage(&stream_id, ExpectedVersion::from_loaded(version), &events);
    if let Ending::Withdrawal = ending {
        // The account's patients and their device pairings end in this same unit of work.
        crate::therapy::withdraw_patients(&mut uow, account_id)
            .await
            .map_err(|err| match err {
                crate::therapy::TherapyError::Conflict => CommandError::Conflict(stream_id.clone()),
                other => CommandError::Cascade(format!("withdrawing patients: {other:?}")),
            })?;
    }
    erase(&mut uow, &state).await?;
    crate::auth::refresh::revoke_all(uow.conn(), account_id).await?;
    uow.commit().await?;
    Ok(())
}

/// Crypto-shreds an ending account (ADR 0009): destroys the data keys of its stream and of
/// every phone number it held (their SMS), and empties those numbers from the outbound
/// messages as a replay would show them. Its patients are erased by their own removal.
async fn erase(uow: &mut UnitOfWork, account: &Account) -> Result<(), sqlx::Error> {
    let Some(account_id) = account.id else {
        return Ok(());
    };
    let phones: Vec<String> = account.phones.iter().map(|p| normalized_phone(p)).collect();
    let mut subjects = vec![AccountEvent::stream_id(account_id)];
    if let Some(keyring) = uow.keyring() {
        subjects.extend(phones.iter().map(|p| privacy::phone_subject(keyring, p)));
    }
    sqlx::query(
        "UPDATE outbound_messages SET recipient = $2 \
         WHERE regexp_replace(recipient, '[^0-9+]', '', 'g') = ANY($1)",
    )
    .bind(&phones)
    .bind(privacy::ERASED)
    .execute(uow.conn())
    .await?;
    uow.shred(&subjects).await
}

/// Admin soft delete / deactivation end the account's sessions too.
pub async fn revoke_sessions(store: &EventStore, account_id: i64) -> Result<(), sqlx::Error> {
    let mut conn = store.pool.acquire().await?;
    crate::auth::refresh::revoke_all(&mut conn, account_id).await?;
    Ok(())
}
