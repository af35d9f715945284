use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Lifecycle status of a device (CONTRACT §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceLifecycle {
    Active,
    Inactive,
    Maintenance,
    Error,
}

impl DeviceLifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Maintenance => "maintenance",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "maintenance" => Some(Self::Maintenance),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// What a device is at provisioning time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// The device's own id string (`unique_id` of seed 000, `device_uid` of seed 002).
    pub unique_id: String,
    pub name: String,
    #[serde(default)]
    pub device_type: Option<String>,
    #[serde(default)]
    pub serial_code: Option<String>,
    #[serde(default)]
    pub mac_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub hardware_id: Option<i64>,
    #[serde(default)]
    pub now_firmware_id: Option<i64>,
    #[serde(default)]
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub group_id: Option<i64>,
    #[serde(default)]
    pub owner_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeviceLifecycle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<i64>,
    /// `Some(None)` clears it (stored as `null`; absent leaves it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub description: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`; serde's `default` makes an absent one
/// `None`. Lets a partial update tell "clear it" from "leave it".
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum DeviceEvent {
    DeviceRegistered {
        device_id: i64,
        public_id: Uuid,
        spec: DeviceSpec,
        status: DeviceLifecycle,
        registered_at: DateTime<Utc>,
    },
    DeviceUpdated {
        device_id: i64,
        changes: DeviceChanges,
        updated_at: DateTime<Utc>,
    },
    DeviceDeleted {
        device_id: i64,
        deleted_at: DateTime<Utc>,
    },
    DeviceConnected {
        device_id: i64,
        real_user_id: i64,
        connected_at: DateTime<Utc>,
    },
    DeviceDisconnected {
        device_id: i64,
        real_user_id: i64,
        disconnected_at: DateTime<Utc>,
    },
    DeviceRenamed {
        device_id: i64,
        alias: String,
        renamed_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    DeviceEvent,
    "device",
    [
        DeviceRegistered,
        DeviceUpdated,
        DeviceDeleted,
        DeviceConnected,
        DeviceDisconnected,
        DeviceRenamed
    ]
);
