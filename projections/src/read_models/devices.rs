//! Inline read model of devices: seed 000/002/004 device views, pairing, lookups by serial
//! code and unique id, and uniqueness of `unique_id` (device_uid) and `serial_code`.

use crate::{Either, Mode, ProjectionError, ReadModel};
use async_trait::async_trait;
use fleetstream_events::{DeviceEvent, StoredEvent, TreatmentEvent};
use sqlx::PgConnection;

pub struct Devices;

#[async_trait]
impl ReadModel for Devices {
    type Event = Either<DeviceEvent, TreatmentEvent>;
    const NAME: &'static str = "devices";
    const TABLES: &'static [&'static str] = &["devices"];
    const MODE: Mode = Mode::Inline;

    async fn apply_event(
        &self,
        conn: &mut PgConnection,
        event: Self::Event,
        _stored: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            Either::Right(TreatmentEvent::TreatmentCompleted {
                device_id,
                record:
                    fleetstream_events::TreatmentRecord {
                        log_file_id: Some(log_file_id),
                        ..
                    },
                ..
            }) => {
                sqlx::query(include_str!("../../sql/devices_last_log_file.sql"))
                    .bind(device_id)
                    .bind(log_file_id)
                    .execute(&mut *conn)
                    .await?;
            }
            Either::Right(_) => {}
            Either::Left(event) => match event {
                DeviceEvent::DeviceRegistered {
                    device_id,
                    public_id,
                    spec: s,
                    status,
                    registered_at,
                } => {
                    sqlx::query(include_str!("../../sql/devices_insert.sql"))
                        .bind(device_id)
                        .bind(public_id)
                        .bind(&s.unique_id)
                        .bind(&s.serial_code)
                        .bind(&s.mac_id)
                        .bind(&s.name)
                        .bind(&s.device_type)
                        .bind(s.project_id)
                        .bind(s.hardware_id)
                        .bind(s.now_firmware_id)
                        .bind(&s.firmware_version)
                        .bind(&s.ip_address)
                        .bind(s.group_id)
                        .bind(s.owner_id)
                        .bind(&s.description)
                        .bind(status.as_str())
                        .bind(registered_at)
                        .execute(&mut *conn)
                        .await?;
                }
                DeviceEvent::DeviceUpdated {
                    device_id,
                    changes: c,
                    updated_at,
                } => {
                    sqlx::query(include_str!("../../sql/devices_update.sql"))
                        .bind(device_id)
                        .bind(&c.name)
                        .bind(&c.device_type)
                        .bind(c.status.map(|s| s.as_str()))
                        .bind(&c.firmware_version)
                        .bind(&c.ip_address)
                        .bind(c.group_id)
                        .bind(c.owner_id)
                        .bind(c.description.clone().flatten())
                        .bind(updated_at)
                        .bind(c.description.is_some())
                        .execute(&mut *conn)
                        .await?;
                }
                DeviceEvent::DeviceDeleted {
                    device_id,
                    deleted_at,
                } => {
                    sqlx::query(
                        "UPDATE devices SET deleted_at = $2, updated_at = $2, real_user_id = NULL WHERE id = $1",
                    )
                    .bind(device_id)
                    .bind(deleted_at)
                    .execute(&mut *conn)
                    .await?;
                }
                DeviceEvent::DeviceConnected {
                    device_id,
                    real_user_id,
                    connected_at,
                } => {
                    sqlx::query(
                        "UPDATE devices SET real_user_id = $2, updated_at = $3 WHERE id = $1",
                    )
                    .bind(device_id)
                    .bind(real_user_id)
                    .bind(connected_at)
                    .execute(&mut *conn)
                    .await?;
                }
                DeviceEvent::DeviceDisconnected {
                    device_id,
                    disconnected_at,
                    ..
                } => {
                    sqlx::query(
                        "UPDATE devices SET real_user_id = NULL, updated_at = $2 WHERE id = $1",
                    )
                    .bind(device_id)
                    .bind(disconnected_at)
                    .execute(&mut *conn)
                    .await?;
                }
                DeviceEvent::DeviceRenamed {
                    device_id,
                    alias,
                    renamed_at,
                } => {
                    sqlx::query(
                        "UPDATE devices SET device_alias = $2, updated_at = $3 WHERE id = $1",
                    )
                    .bind(device_id)
                    .bind(alias)
                    .bind(renamed_at)
                    .execute(&mut *conn)
                    .await?;
                }
            },
        }
        Ok(())
    }
}
