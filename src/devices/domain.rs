//! Pure state and decisions of the device aggregate (registry side; pairing is in
//! `crate::therapy::pairing` because it touches the patient too).

use crate::es::Aggregate;
use chrono::{DateTime, Utc};
use fleetstream_events::{DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Device {
    pub id: Option<i64>,
    pub deleted: bool,
    pub unique_id: String,
    pub serial_code: Option<String>,
    pub mac_id: Option<String>,
    pub owner_id: Option<i64>,
    pub real_user_id: Option<i64>,
    pub alias: Option<String>,
}

impl Device {
    /// Registered and not deleted.
    pub fn is_live(&self) -> bool {
        self.id.is_some() && !self.deleted
    }
}

impl Aggregate for Device {
    type Event = DeviceEvent;

    fn evolve(&mut self, event: &DeviceEvent) {
        match event {
            DeviceEvent::DeviceRegistered {
                device_id, spec, ..
            } => {
                self.id = Some(*device_id);
                self.unique_id = spec.unique_id.clone();
                self.serial_code = spec.serial_code.clone();
                self.mac_id = spec.mac_id.clone();
                self.owner_id = spec.owner_id;
            }
            DeviceEvent::DeviceUpdated { changes, .. } => {
                if let Some(owner) = changes.owner_id {
                    self.owner_id = Some(owner);
                }
            }
            DeviceEvent::DeviceDeleted { .. } => self.deleted = true,
            DeviceEvent::DeviceConnected { real_user_id, .. } => {
                self.real_user_id = Some(*real_user_id)
            }
            DeviceEvent::DeviceDisconnected { .. } => self.real_user_id = None,
            DeviceEvent::DeviceRenamed { alias, .. } => self.alias = Some(alias.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    AlreadyRegistered,
    NotFound,
    InvalidSerialCode,
    /// A field failed validation: (field, message).
    Invalid(&'static str, &'static str),
}

#[derive(Debug, Clone)]
pub struct RegisterDevice {
    pub device_id: i64,
    pub public_id: Uuid,
    pub spec: DeviceSpec,
    pub status: Option<DeviceLifecycle>,
    pub now: DateTime<Utc>,
}

/// `serial_code` upper-cased when it is 6–20 characters of A–Z and 0–9 (CONTRACT §3).
pub fn normalize_serial(raw: &str) -> Result<String, DeviceError> {
    let upper = raw.trim().to_ascii_uppercase();
    let valid = (6..=20).contains(&upper.len())
        && upper
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if valid {
        Ok(upper)
    } else {
        Err(DeviceError::InvalidSerialCode)
    }
}

fn mac_key(raw: &str) -> String {
    raw.chars()
        .filter(|c| *c != ':' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// MAC matching ignores `:`/`-` and case; a 4-character value matches the last four
/// characters of the stored MAC (the app sends only those).
pub fn mac_matches(stored: &str, sent: &str) -> bool {
    let (stored, sent) = (mac_key(stored), mac_key(sent));
    if sent.is_empty() {
        return false;
    }
    if sent.len() == 4 {
        stored.ends_with(&sent)
    } else {
        stored == sent
    }
}

/// Device names are trimmed and at least 3 characters (seed 004).
pub fn normalize_name(raw: &str) -> Result<String, DeviceError> {
    // DRF trims with Python's `str.strip`, which also takes the separators U+001C–U+001F.
    let name = raw.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
    if name.is_empty() {
        return Err(DeviceError::Invalid("name", "This field may not be blank."));
    }
    if name.chars().count() < 3 {
        return Err(DeviceError::Invalid(
            "name",
            "Device name must be at least 3 characters long.",
        ));
    }
    Ok(name.to_owned())
}

/// Lifecycle status from its wire name (seed 004 message).
pub fn parse_status(raw: &str) -> Result<DeviceLifecycle, DeviceError> {
    DeviceLifecycle::parse(raw).ok_or(DeviceError::Invalid(
        "status",
        "Status must be one of: active, inactive, maintenance, error",
    ))
}

pub fn decide_register(
    state: &Device,
    cmd: RegisterDevice,
) -> Result<Vec<DeviceEvent>, DeviceError> {
    if state.id.is_some() {
        return Err(DeviceError::AlreadyRegistered);
    }
    let mut spec = cmd.spec;
    spec.name = normalize_name(&spec.name)?;
    spec.unique_id = spec.unique_id.trim().to_owned();
    if spec.unique_id.is_empty() {
        return Err(DeviceError::Invalid(
            "device_uid",
            "This field may not be blank.",
        ));
    }
    spec.serial_code = spec
        .serial_code
        .as_deref()
        .map(normalize_serial)
        .transpose()?;
    Ok(vec![DeviceEvent::DeviceRegistered {
        device_id: cmd.device_id,
        public_id: cmd.public_id,
        spec,
        status: cmd.status.unwrap_or(DeviceLifecycle::Inactive),
        registered_at: cmd.now,
    }])
}

pub fn decide_update(
    state: &Device,
    mut changes: DeviceChanges,
    now: DateTime<Utc>,
) -> Result<Vec<DeviceEvent>, DeviceError> {
    let Some(device_id) = state.id.filter(|_| !state.deleted) else {
        return Err(DeviceError::NotFound);
    };
    if let Some(name) = &changes.name {
        changes.name = Some(normalize_name(name)?);
    }
    if changes == DeviceChanges::default() {
        return Ok(vec![]);
    }
    Ok(vec![DeviceEvent::DeviceUpdated {
        device_id,
        changes,
        updated_at: now,
    }])
}

pub fn decide_delete(state: &Device, now: DateTime<Utc>) -> Result<Vec<DeviceEvent>, DeviceError> {
    let Some(device_id) = state.id.filter(|_| !state.deleted) else {
        return Err(DeviceError::NotFound);
    };
    Ok(vec![DeviceEvent::DeviceDeleted {
        device_id,
        deleted_at: now,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use insta::assert_json_snapshot;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 2, 21, 12, 0, 0).unwrap()
    }

    fn register_cmd() -> RegisterDevice {
        RegisterDevice {
            device_id: 7,
            public_id: Uuid::nil(),
            spec: DeviceSpec {
                unique_id: " dev-uid-1 ".into(),
                name: "  Withnox 1 ".into(),
                serial_code: Some("sl20401000".into()),
                mac_id: Some("AA:BB:CC:DD:41:AD".into()),
                owner_id: Some(3),
                ..Default::default()
            },
            status: None,
            now: now(),
        }
    }

    fn registered() -> Device {
        Device::fold(&decide_register(&Device::default(), register_cmd()).unwrap())
    }

    #[test]
    fn given_nothing_when_registering_then_normalized_device_registered() {
        assert_json_snapshot!(decide_register(&Device::default(), register_cmd()).unwrap());
    }

    #[test]
    fn given_registered_when_registering_again_then_already_registered() {
        assert_eq!(
            decide_register(&registered(), register_cmd()),
            Err(DeviceError::AlreadyRegistered)
        );
    }

    #[test]
    fn given_nothing_when_registering_bad_serial_or_name_then_rejected() {
        let mut bad_serial = register_cmd();
        bad_serial.spec.serial_code = Some("ab-12".into());
        assert_eq!(
            decide_register(&Device::default(), bad_serial),
            Err(DeviceError::InvalidSerialCode)
        );
        let mut bad_name = register_cmd();
        bad_name.spec.name = " ab ".into();
        assert_eq!(
            decide_register(&Device::default(), bad_name),
            Err(DeviceError::Invalid(
                "name",
                "Device name must be at least 3 characters long."
            ))
        );
    }

    #[test]
    fn given_registered_when_updating_then_updated_and_empty_changes_emit_nothing() {
        let changes = DeviceChanges {
            name: Some(" Renamed ".into()),
            status: Some(DeviceLifecycle::Maintenance),
            ..Default::default()
        };
        assert_json_snapshot!(decide_update(&registered(), changes, now()).unwrap());
        assert_eq!(
            decide_update(&registered(), DeviceChanges::default(), now()),
            Ok(vec![])
        );
    }

    #[test]
    fn given_registered_when_clearing_the_description_then_null_is_recorded_and_read_back() {
        let clear = DeviceChanges {
            description: Some(None),
            ..Default::default()
        };
        let events = decide_update(&registered(), clear, now()).unwrap();
        assert_json_snapshot!(events);
        // Absent (`None`) and cleared (`Some(None)`) survive the round trip through JSON.
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(
            serde_json::from_value::<DeviceEvent>(json).unwrap(),
            events[0]
        );
        let untouched: DeviceChanges = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        assert_eq!(untouched.description, None);
    }

    #[test]
    fn given_missing_or_deleted_when_updating_or_deleting_then_not_found() {
        assert_eq!(
            decide_update(&Device::default(), DeviceChanges::default(), now()),
            Err(DeviceError::NotFound)
        );
        let mut deleted = registered();
        deleted.evolve(&decide_delete(&registered(), now()).unwrap()[0]);
        assert_eq!(decide_delete(&deleted, now()), Err(DeviceError::NotFound));
        assert_json_snapshot!(decide_delete(&registered(), now()).unwrap());
    }

    #[test]
    fn status_rule() {
        assert_eq!(
            parse_status("maintenance"),
            Ok(DeviceLifecycle::Maintenance)
        );
        assert_eq!(
            parse_status("Active"),
            Err(DeviceError::Invalid(
                "status",
                "Status must be one of: active, inactive, maintenance, error"
            ))
        );
    }

    #[test]
    fn serial_and_mac_rules() {
        assert_eq!(normalize_serial("sl2040"), Ok("SL2040".into()));
        assert!(normalize_serial("SL204").is_err());
        assert!(normalize_serial("A123456789012345678901").is_err());
        assert!(normalize_serial("SL2040-1").is_err());
        assert!(mac_matches("AA:BB:CC:DD:41:AD", "41ad"));
        assert!(mac_matches("AA:BB:CC:DD:41:AD", "aa-bb-cc-dd-41-ad"));
        assert!(!mac_matches("AA:BB:CC:DD:41:AD", "41AE"));
        assert!(!mac_matches("AA:BB:CC:DD:41:AD", ""));
    }
}
