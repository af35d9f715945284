//! Messages between the server and its devices (aggregate `devicemsg`, one stream per device,
//! appended without a version check). Commands, configuration and firmware updates go out on
//! `devices.{uid}.{command|config|ota}` (MQTT `devices/{uid}/…`); logs and command responses
//! come in through the ingest and are recorded here.

pub mod domain;

use crate::devices::views;
use crate::es::{CommandError, EventStore};
use crate::measurements::ingest::derived_event_id;
use domain::{SendCommand, SendError, Target};
use fleetstream_events::store::{ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{DeviceChannel, DeviceMessageEvent, DomainEvent, EventMetadata};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    #[error("{}", .0.message())]
    Refused(SendError),
    /// Recorded, but NATS did not take the message for the device.
    #[error("Device unreachable")]
    Unreachable,
    #[error("{0}")]
    Failed(String),
}

impl<E: std::fmt::Debug> From<CommandError<E>> for SendFailure {
    fn from(err: CommandError<E>) -> Self {
        Self::Failed(format!("{err:?}"))
    }
}

impl From<sqlx::Error> for SendFailure {
    fn from(err: sqlx::Error) -> Self {
        Self::Failed(err.to_string())
    }
}

/// Who sends, and what.
pub struct Outgoing {
    pub account_id: i64,
    pub is_manager: bool,
    pub device_uid: String,
    pub channel: DeviceChannel,
    pub command: Value,
}

/// A subject token for a device uid (the MQTT topic level maps to it one to one).
fn subject_safe(uid: &str) -> bool {
    !uid.is_empty()
        && !uid
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

/// SendDeviceCommand: record the command, then hand it to the device on its channel. Returns
/// the command id the device's response will carry.
pub async fn send(
    store: &EventStore,
    nats: Option<&async_nats::Client>,
    metadata: EventMetadata,
    out: Outgoing,
) -> Result<Uuid, SendFailure> {
    let mut conn = store.pool.acquire().await?;
    let target = views::by_unique_id(&mut conn, &out.device_uid)
        .await?
        .filter(|d| subject_safe(&d.unique_id))
        .map(|d| Target {
            device_id: d.id,
            device_uid: d.unique_id,
            owner_id: d.owner_id,
        });
    drop(conn);
    let command_id = Uuid::now_v7();
    let event = domain::decide_send(
        target,
        SendCommand {
            account_id: out.account_id,
            is_manager: out.is_manager,
            channel: out.channel,
            command: out.command,
            command_id,
            now: chrono::Utc::now(),
        },
    )
    .map_err(SendFailure::Refused)?;
    let DeviceMessageEvent::DeviceCommandSent { device_id, .. } = &event else {
        return Err(SendFailure::Failed("a send decides a sent command".into()));
    };
    let body = domain::device_payload(&event).unwrap_or_default();
    let mut uow = store.begin(metadata).await?;
    uow.stage(
        &DeviceMessageEvent::stream_id(device_id),
        ExpectedVersion::Any,
        std::slice::from_ref(&event),
    );
    uow.commit::<SendError>().await?;
    let nats = nats.ok_or(SendFailure::Unreachable)?;
    let subject = format!("devices.{}.{}", out.device_uid, out.channel.as_str());
    let bytes = serde_json::to_vec(&body).map_err(|e| SendFailure::Failed(e.to_string()))?;
    nats.publish(subject, bytes.into())
        .await
        .map_err(|_| SendFailure::Unreachable)?;
    nats.flush().await.map_err(|_| SendFailure::Unreachable)?;
    metrics::counter!("fleet_device_commands_sent_total", "channel" => out.channel.as_str())
        .increment(1);
    Ok(command_id)
}

/// The account that sent the command a response names, when it is one of ours.
pub async fn requested_by(
    conn: &mut sqlx::PgConnection,
    command_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT requested_by FROM device_commands WHERE command_id::text = $1")
        .bind(command_id)
        .fetch_optional(conn)
        .await
}

/// A received log or response, with the message it came from.
pub struct Received {
    pub event: DeviceMessageEvent,
    pub device_id: i64,
    pub source: Uuid,
    pub metadata: EventMetadata,
}

/// Records received device messages in one transaction; ids derive from each message, so a
/// redelivered one appends nothing.
pub async fn record_received(
    store: &EventStore,
    received: Vec<Received>,
) -> Result<(), SendFailure> {
    if received.is_empty() {
        return Ok(());
    }
    let mut uow = store.begin(EventMetadata::default()).await?;
    let appends: Vec<StreamAppend> = received
        .into_iter()
        .map(|r| {
            let mut event = NewEvent::from_domain(&r.event, &r.metadata);
            event.event_id = derived_event_id(r.source, 0);
            StreamAppend {
                stream_id: DeviceMessageEvent::stream_id(r.device_id),
                expected: ExpectedVersion::Any,
                events: vec![event],
            }
        })
        .collect();
    uow.stage_appends(appends);
    uow.commit::<SendError>().await?;
    Ok(())
}
