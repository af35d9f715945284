use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A "real user": a person treated with a device, owned by an account (`root_user_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientProfile {
    pub first_name: String,
    pub last_name: String,
    /// yyyymmdd
    pub birthdate: String,
    /// M|F|N|P
    pub gender: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatientChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PatientEvent {
    PatientCreated {
        patient_id: i64,
        root_user_id: i64,
        profile: PatientProfile,
        created_at: DateTime<Utc>,
    },
    PatientUpdated {
        patient_id: i64,
        changes: PatientChanges,
        updated_at: DateTime<Utc>,
    },
    PatientDeleted {
        patient_id: i64,
        deleted_at: DateTime<Utc>,
    },
    /// The patient side of a pairing: a patient holds at most one device.
    PatientDeviceAssigned {
        patient_id: i64,
        device_id: i64,
        assigned_at: DateTime<Utc>,
    },
    PatientDeviceReleased {
        patient_id: i64,
        device_id: i64,
        released_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    PatientEvent,
    "patient",
    [
        PatientCreated,
        PatientUpdated,
        PatientDeleted,
        PatientDeviceAssigned,
        PatientDeviceReleased
    ]
);
