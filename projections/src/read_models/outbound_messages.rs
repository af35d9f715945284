//! Inline read model of messages handed to the SMS sender: the phone check reads the latest
//! code sent to a number from here.

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{MessageEvent, StoredEvent};
use sqlx::PgConnection;

pub struct OutboundMessages;

#[async_trait]
impl ReadModel for OutboundMessages {
    type Event = MessageEvent;
    const NAME: &'static str = "outbound_messages";
    const TABLES: &'static [&'static str] = &["outbound_messages"];
    const MODE: Mode = Mode::Inline;

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: MessageEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            MessageEvent::SmsQueued {
                message_id,
                phone,
                body,
                code,
                queued_at,
            } => {
                sqlx::query(
                    "INSERT INTO outbound_messages (id, channel, recipient, body, code, created_at) VALUES ($1, 'sms', $2, $3, $4, $5)",
                )
                .bind(message_id)
                .bind(phone)
                .bind(body)
                .bind(code)
                .bind(queued_at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}
