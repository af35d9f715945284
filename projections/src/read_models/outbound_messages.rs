//! Inline read model of messages handed to the SMS sender: the phone check reads the latest
//! code sent to a number from here.

use crate::{Mode, Projection, ProjectionError};
use async_trait::async_trait;
use fleetstream_events::{MessageEvent, StoredEvent};
use sqlx::PgConnection;

pub struct OutboundMessages;

#[async_trait]
impl Projection for OutboundMessages {
    fn name(&self) -> &'static str {
        "outbound_messages"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["message"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["outbound_messages"]
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
            let Some(event) = stored.decode::<MessageEvent>() else {
                continue;
            };
            match event? {
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
        }
        Ok(())
    }
}
