//! Pure decisions about messages to and from devices: who may send a device a command, what a
//! command may hold, and what a received log or response records.

use chrono::{DateTime, Utc};
use fleetstream_events::{
    encoded_len, DeviceChannel, DeviceMessageEvent, MAX_DEVICE_PAYLOAD_BYTES,
};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    DeviceNotFound,
    Forbidden,
    /// The command is neither an object nor a non-empty string.
    InvalidCommand,
    TooLarge,
}

impl SendError {
    pub fn message(self) -> &'static str {
        match self {
            Self::DeviceNotFound => "Device not found",
            Self::Forbidden => "Not enough permissions",
            Self::InvalidCommand => "command must be an object or a non-empty string",
            Self::TooLarge => "command is too large",
        }
    }
}

/// The device a command names, as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub device_id: i64,
    pub device_uid: String,
    pub owner_id: Option<i64>,
}

pub struct SendCommand {
    pub account_id: i64,
    pub is_manager: bool,
    pub channel: DeviceChannel,
    pub command: Value,
    pub command_id: Uuid,
    pub now: DateTime<Utc>,
}

/// Managers and above, and the device's owner, may send; a bare string is an action
/// (`"restart"` → `{"action": "restart"}`).
pub fn decide_send(
    target: Option<Target>,
    cmd: SendCommand,
) -> Result<DeviceMessageEvent, SendError> {
    let target = target.ok_or(SendError::DeviceNotFound)?;
    if !(cmd.is_manager || target.owner_id == Some(cmd.account_id)) {
        return Err(SendError::Forbidden);
    }
    let payload = match cmd.command {
        Value::Object(map) => Value::Object(map),
        Value::String(action) if !action.trim().is_empty() => json!({ "action": action }),
        _ => return Err(SendError::InvalidCommand),
    };
    if encoded_len(&payload) > MAX_DEVICE_PAYLOAD_BYTES {
        return Err(SendError::TooLarge);
    }
    Ok(DeviceMessageEvent::DeviceCommandSent {
        device_id: target.device_id,
        device_uid: target.device_uid,
        command_id: cmd.command_id,
        channel: cmd.channel,
        payload,
        requested_by: cmd.account_id,
        sent_at: cmd.now,
    })
}

/// What the device receives on `devices/{uid}/{channel}`: the command with its id.
pub fn device_payload(event: &DeviceMessageEvent) -> Option<Value> {
    let DeviceMessageEvent::DeviceCommandSent {
        command_id,
        payload,
        ..
    } = event
    else {
        return None;
    };
    let mut body = payload.clone();
    if let Value::Object(map) = &mut body {
        map.insert("command_id".into(), json!(command_id));
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn target(owner: Option<i64>) -> Option<Target> {
        Some(Target {
            device_id: 7,
            device_uid: "dev-7".into(),
            owner_id: owner,
        })
    }

    fn send(account_id: i64, is_manager: bool, command: Value) -> SendCommand {
        SendCommand {
            account_id,
            is_manager,
            channel: DeviceChannel::Command,
            command,
            command_id: Uuid::from_u128(42),
            now: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn given_an_owned_device_when_its_owner_sends_a_command_then_it_is_recorded() {
        let event = decide_send(
            target(Some(3)),
            send(3, false, json!({"action": "restart"})),
        );
        insta::assert_json_snapshot!(event.unwrap());
    }

    #[test]
    fn given_any_device_when_a_manager_sends_a_bare_action_then_it_becomes_an_object() {
        let event = decide_send(target(None), send(1, true, json!("reboot"))).unwrap();
        assert_eq!(
            device_payload(&event),
            Some(json!({"action": "reboot", "command_id": Uuid::from_u128(42)}))
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            decide_send(None, send(1, true, json!({}))),
            Err(SendError::DeviceNotFound)
        );
        assert_eq!(
            decide_send(target(Some(3)), send(4, false, json!({"action": "x"}))),
            Err(SendError::Forbidden)
        );
        assert_eq!(
            decide_send(target(Some(3)), send(3, false, json!(12))),
            Err(SendError::InvalidCommand)
        );
        assert_eq!(
            decide_send(target(Some(3)), send(3, false, json!("  "))),
            Err(SendError::InvalidCommand)
        );
        assert_eq!(
            decide_send(
                target(Some(3)),
                send(3, false, json!({"blob": "x".repeat(70_000)}))
            ),
            Err(SendError::TooLarge)
        );
    }
}
