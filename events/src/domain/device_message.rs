//! Messages between the server and a device (stream `devicemsg-<device_id>`, appended without a
//! version check): commands, configuration and firmware updates sent to the device, and the
//! device's own logs and command responses arriving through the ingest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The largest device payload (its JSON) recorded in one event; larger ones are refused.
pub const MAX_DEVICE_PAYLOAD_BYTES: usize = 64 * 1024;

/// Where a server → device message goes: MQTT `devices/{uid}/{channel}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChannel {
    Command,
    Config,
    Ota,
}

impl DeviceChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Config => "config",
            Self::Ota => "ota",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DeviceMessageEvent {
    /// Sent to the device on its channel, with the id its response will carry.
    DeviceCommandSent {
        device_id: i64,
        device_uid: String,
        command_id: Uuid,
        channel: DeviceChannel,
        payload: Value,
        requested_by: i64,
        sent_at: DateTime<Utc>,
    },
    /// The device answered a command (`command_id` as it sent it); `requested_by` is the
    /// account that sent the command, when the command is known.
    DeviceResponded {
        device_id: i64,
        device_uid: String,
        command_id: String,
        #[serde(default)]
        requested_by: Option<i64>,
        payload: Value,
        received_at: DateTime<Utc>,
    },
    /// A log entry the device published (`devices/{uid}/log`).
    DeviceLogRecorded {
        device_id: i64,
        device_uid: String,
        event_type: String,
        payload: Value,
        received_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    DeviceMessageEvent,
    "devicemsg",
    [DeviceCommandSent, DeviceResponded, DeviceLogRecorded]
);
