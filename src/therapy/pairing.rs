//! Pairing a device with a patient touches both aggregates; the decision is pure and returns
//! the events of each, which the caller stages in one UnitOfWork.

use crate::devices::domain::Device;
use crate::therapy::patients::Patient;
use chrono::{DateTime, Utc};
use fleetstream_events::{DeviceEvent, PatientEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingError {
    DeviceNotFound,
    PatientNotFound,
    /// The device is paired with another patient, or the patient holds another device.
    AlreadyConnected,
    NotConnected,
}

pub type PairingEvents = (Vec<DeviceEvent>, Vec<PatientEvent>);

/// The ids of a live patient and device, patient checked first (seed 000's check order).
fn live_ids(device: &Device, patient: &Patient) -> Result<(i64, i64), PairingError> {
    let patient_id = patient
        .id
        .filter(|_| patient.is_live())
        .ok_or(PairingError::PatientNotFound)?;
    let device_id = device
        .id
        .filter(|_| device.is_live())
        .ok_or(PairingError::DeviceNotFound)?;
    Ok((patient_id, device_id))
}

/// Pairs `device` with `patient`. Pairing the same pair again changes nothing and succeeds;
/// pairing never touches the device's owner.
pub fn decide_connect(
    device: &Device,
    patient: &Patient,
    now: DateTime<Utc>,
) -> Result<PairingEvents, PairingError> {
    let (patient_id, device_id) = live_ids(device, patient)?;
    match (device.real_user_id, patient.device_id) {
        (Some(p), Some(d)) if p == patient_id && d == device_id => Ok((vec![], vec![])),
        (None, None) => Ok((
            vec![DeviceEvent::DeviceConnected {
                device_id,
                real_user_id: patient_id,
                connected_at: now,
            }],
            vec![PatientEvent::PatientDeviceAssigned {
                patient_id,
                device_id,
                assigned_at: now,
            }],
        )),
        _ => Err(PairingError::AlreadyConnected),
    }
}

/// Unpairs `device` from `patient`; 409 `Not Connected Device` when they are not paired.
pub fn decide_disconnect(
    device: &Device,
    patient: &Patient,
    now: DateTime<Utc>,
) -> Result<PairingEvents, PairingError> {
    let (patient_id, device_id) = live_ids(device, patient)?;
    if device.real_user_id != Some(patient_id) {
        return Err(PairingError::NotConnected);
    }
    Ok((
        vec![DeviceEvent::DeviceDisconnected {
            device_id,
            real_user_id: patient_id,
            disconnected_at: now,
        }],
        vec![PatientEvent::PatientDeviceReleased {
            patient_id,
            device_id,
            released_at: now,
        }],
    ))
}

/// Renames a device paired with `patient`.
pub fn decide_rename(
    device: &Device,
    patient: &Patient,
    alias: String,
    now: DateTime<Utc>,
) -> Result<Vec<DeviceEvent>, PairingError> {
    let (patient_id, device_id) = live_ids(device, patient)?;
    if device.real_user_id != Some(patient_id) {
        return Err(PairingError::NotConnected);
    }
    Ok(vec![DeviceEvent::DeviceRenamed {
        device_id,
        alias,
        renamed_at: now,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::Aggregate;
    use chrono::TimeZone;
    use insta::assert_json_snapshot;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 2, 21, 12, 0, 0).unwrap()
    }

    fn device(id: i64) -> Device {
        Device {
            id: Some(id),
            unique_id: format!("uid-{id}"),
            owner_id: Some(99),
            ..Default::default()
        }
    }

    fn patient(id: i64) -> Patient {
        Patient {
            id: Some(id),
            root_user_id: 1,
            ..Default::default()
        }
    }

    fn paired(d: i64, p: i64) -> (Device, Patient) {
        let (mut dev, mut pat) = (device(d), patient(p));
        let (de, pe) = decide_connect(&dev, &pat, now()).unwrap();
        de.iter().for_each(|e| dev.evolve(e));
        pe.iter().for_each(|e| pat.evolve(e));
        (dev, pat)
    }

    #[test]
    fn given_unpaired_when_connecting_then_both_sides_record_it_and_owner_is_kept() {
        let events = decide_connect(&device(2), &patient(5), now()).unwrap();
        assert_json_snapshot!(events);
        let (dev, _) = paired(2, 5);
        assert_eq!(dev.owner_id, Some(99));
    }

    #[test]
    fn given_same_pair_when_connecting_again_then_nothing_changes() {
        let (dev, pat) = paired(2, 5);
        assert_eq!(decide_connect(&dev, &pat, now()), Ok((vec![], vec![])));
    }

    #[test]
    fn given_paired_elsewhere_when_connecting_then_already_connected() {
        let (dev, _) = paired(2, 5);
        assert_eq!(
            decide_connect(&dev, &patient(6), now()),
            Err(PairingError::AlreadyConnected)
        );
        let (_, pat) = paired(2, 5);
        assert_eq!(
            decide_connect(&device(3), &pat, now()),
            Err(PairingError::AlreadyConnected)
        );
    }

    #[test]
    fn given_missing_sides_when_connecting_then_not_found() {
        assert_eq!(
            decide_connect(&Device::default(), &patient(5), now()),
            Err(PairingError::DeviceNotFound)
        );
        assert_eq!(
            decide_connect(&device(2), &Patient::default(), now()),
            Err(PairingError::PatientNotFound)
        );
    }

    #[test]
    fn given_paired_when_disconnecting_then_both_sides_released() {
        let (dev, pat) = paired(2, 5);
        assert_json_snapshot!(decide_disconnect(&dev, &pat, now()).unwrap());
    }

    #[test]
    fn given_not_paired_when_disconnecting_or_renaming_then_not_connected() {
        let (dev, _) = paired(2, 5);
        assert_eq!(
            decide_disconnect(&dev, &patient(6), now()),
            Err(PairingError::NotConnected)
        );
        assert_eq!(
            decide_rename(&device(3), &patient(6), "x".into(), now()),
            Err(PairingError::NotConnected)
        );
    }

    #[test]
    fn given_paired_when_renaming_then_renamed() {
        let (dev, pat) = paired(2, 5);
        assert_json_snapshot!(decide_rename(&dev, &pat, "Mom's".into(), now()).unwrap());
    }
}
