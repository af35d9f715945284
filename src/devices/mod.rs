//! The device registry (aggregate `device`): provisioning, updates, soft delete, and the
//! seed 002 (`/api/v1/devices`) and seed 004 (`/api/devices/`) views.

pub mod core_http;
pub mod domain;
pub mod drf_http;
pub mod views;

use crate::es::{next_id, CommandError, EventStore};
use chrono::Utc;
use domain::{Device, DeviceError, RegisterDevice};
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{
    DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec, DomainEvent, EventMetadata,
};
use uuid::Uuid;

/// Why provisioning failed, beyond the pure decision.
#[derive(Debug)]
pub enum RegisterError {
    Domain(DeviceError),
    DuplicateUniqueId,
    DuplicateSerialCode,
    Other(CommandError<DeviceError>),
}

/// Registers a device; the inline `devices` read model's unique indexes reject a duplicate
/// `unique_id` or `serial_code` in the same transaction, also under concurrency.
pub async fn register(
    store: &EventStore,
    metadata: EventMetadata,
    spec: DeviceSpec,
    status: Option<DeviceLifecycle>,
) -> Result<i64, RegisterError> {
    let run = async {
        let mut uow = store.begin(metadata).await?;
        check_owner(uow.conn(), spec.owner_id).await?;
        let device_id = next_id(uow.conn(), "device_id_seq").await?;
        let events = domain::decide_register(
            &Device::default(),
            RegisterDevice {
                device_id,
                public_id: Uuid::new_v4(),
                spec,
                status,
                now: Utc::now(),
            },
        )
        .map_err(CommandError::Domain)?;
        uow.stage(
            &DeviceEvent::stream_id(device_id),
            ExpectedVersion::NoStream,
            &events,
        );
        uow.commit::<DeviceError>().await?;
        Ok::<i64, CommandError<DeviceError>>(device_id)
    };
    run.await.map_err(|err| match err {
        CommandError::Domain(e) => RegisterError::Domain(e),
        e if e.is_unique_violation("devices_unique_id_key") => RegisterError::DuplicateUniqueId,
        e if e.is_unique_violation("devices_serial_code_key") => RegisterError::DuplicateSerialCode,
        e => RegisterError::Other(e),
    })
}

/// An `owner_id` must name a live account (issue 14: it was stored dangling before).
async fn check_owner(
    conn: &mut sqlx::PgConnection,
    owner_id: Option<i64>,
) -> Result<(), CommandError<DeviceError>> {
    match owner_id {
        Some(id) if !crate::accounts::read::account_exists(conn, id).await? => Err(
            CommandError::Domain(DeviceError::Invalid("owner_id", UNKNOWN_OWNER)),
        ),
        _ => Ok(()),
    }
}

/// The refusal of an `owner_id` that names no account.
pub const UNKNOWN_OWNER: &str = "No account has this id";

pub async fn update(
    store: &EventStore,
    metadata: EventMetadata,
    device_id: i64,
    changes: DeviceChanges,
) -> Result<(), CommandError<DeviceError>> {
    let mut conn = store.pool.acquire().await?;
    check_owner(&mut conn, changes.owner_id).await?;
    drop(conn);
    store
        .execute::<Device, _>(device_id, metadata, |state| {
            domain::decide_update(state, changes.clone(), Utc::now())
        })
        .await
        .map(|_| ())
}

pub async fn delete(
    store: &EventStore,
    metadata: EventMetadata,
    device_id: i64,
) -> Result<(), CommandError<DeviceError>> {
    store
        .execute::<Device, _>(device_id, metadata, |state| {
            domain::decide_delete(state, Utc::now())
        })
        .await
        .map(|_| ())
}
