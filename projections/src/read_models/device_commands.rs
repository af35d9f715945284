//! Inline read model of commands sent to devices: a device's response is routed back to the
//! account that sent the command, and the response that arrives right after the send must find
//! it (hence inline).

use crate::{Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{DeviceMessageEvent, StoredEvent};
use sqlx::PgConnection;

pub struct DeviceCommands;

#[async_trait]
impl ReadModel for DeviceCommands {
    type Event = DeviceMessageEvent;
    const NAME: &'static str = "device_commands";
    const TABLES: &'static [&'static str] = &["device_commands"];
    const MODE: Mode = Mode::Inline;

    fn wants(stored: &StoredEvent) -> bool {
        stored.event_type != "DeviceLogRecorded"
    }

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: DeviceMessageEvent,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            DeviceMessageEvent::DeviceCommandSent {
                device_id,
                command_id,
                channel,
                requested_by,
                sent_at,
                ..
            } => {
                sqlx::query(include_str!("../../sql/device_commands_insert.sql"))
                    .bind(command_id)
                    .bind(device_id)
                    .bind(channel.as_str())
                    .bind(requested_by)
                    .bind(sent_at)
                    .execute(&mut *conn)
                    .await?;
            }
            DeviceMessageEvent::DeviceResponded {
                command_id,
                received_at,
                ..
            } => {
                sqlx::query(include_str!("../../sql/device_commands_responded.sql"))
                    .bind(command_id)
                    .bind(received_at)
                    .execute(&mut *conn)
                    .await?;
            }
            DeviceMessageEvent::DeviceLogRecorded { .. } => {}
        }
        Ok(())
    }
}
