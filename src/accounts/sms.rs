//! Verification SMS: the sender trait, the default sender that records messages in the log
//! (and so in `outbound_messages`), and the code check shared by signup and change-phone.

use crate::es::{next_id, CommandError, EventStore};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{DomainEvent, EventMetadata, MessageEvent};

/// How long a sent code stays valid (seed 001: 3 minutes).
pub const CODE_TTL: Duration = Duration::minutes(3);

#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Delivers `body` to `phone`; `code` is the verification code it carries.
    async fn send(
        &self,
        store: &EventStore,
        phone: &str,
        body: &str,
        code: &str,
    ) -> Result<(), CommandError<std::convert::Infallible>>;
}

/// Records each message as a `SmsQueued` event; a provider relay can consume them from NATS.
pub struct RecordingSmsSender;

#[async_trait]
impl SmsSender for RecordingSmsSender {
    async fn send(
        &self,
        store: &EventStore,
        phone: &str,
        body: &str,
        code: &str,
    ) -> Result<(), CommandError<std::convert::Infallible>> {
        let mut uow = store.begin(EventMetadata::default()).await?;
        let message_id = next_id(uow.conn(), "message_id_seq").await?;
        let event = MessageEvent::SmsQueued {
            message_id,
            phone: phone.to_owned(),
            body: body.to_owned(),
            code: Some(code.to_owned()),
            queued_at: Utc::now(),
        };
        uow.stage(
            &MessageEvent::stream_id(message_id),
            ExpectedVersion::NoStream,
            &[event],
        );
        uow.commit().await?;
        Ok(())
    }
}

/// E.164: `+`, then 8–15 digits, the first not 0.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

pub fn new_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    Valid,
    Expired,
    Invalid,
}

/// Compares `code` with the latest code sent to `phone`.
pub async fn check_code(
    pool: &sqlx::PgPool,
    phone: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<CodeCheck, sqlx::Error> {
    let latest: Option<(Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT code, created_at FROM outbound_messages WHERE recipient = $1 AND code IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_optional(pool)
    .await?;
    Ok(match latest {
        Some((Some(sent), _)) if sent != code.trim() => CodeCheck::Invalid,
        Some((Some(_), at)) if now - at > CODE_TTL => CodeCheck::Expired,
        Some((Some(_), _)) => CodeCheck::Valid,
        _ => CodeCheck::Invalid,
    })
}
