//! Pure state and decisions of the patient ("real user") aggregate.

use crate::es::Aggregate;
use chrono::{DateTime, Utc};
use fleetstream_events::{PatientChanges, PatientEvent, PatientProfile};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patient {
    pub id: Option<i64>,
    pub root_user_id: i64,
    pub deleted: bool,
    pub device_id: Option<i64>,
}

impl Patient {
    pub fn is_live(&self) -> bool {
        self.id.is_some() && !self.deleted
    }

    /// Live and owned by `account_id`.
    pub fn is_owned_by(&self, account_id: i64) -> bool {
        self.is_live() && self.root_user_id == account_id
    }
}

impl Aggregate for Patient {
    type Event = PatientEvent;

    fn evolve(&mut self, event: &PatientEvent) {
        match event {
            PatientEvent::PatientCreated {
                patient_id,
                root_user_id,
                ..
            } => {
                self.id = Some(*patient_id);
                self.root_user_id = *root_user_id;
            }
            PatientEvent::PatientUpdated { .. } => {}
            PatientEvent::PatientDeleted { .. } => self.deleted = true,
            PatientEvent::PatientDeviceAssigned { device_id, .. } => {
                self.device_id = Some(*device_id)
            }
            PatientEvent::PatientDeviceReleased { .. } => self.device_id = None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientError {
    AlreadyExists,
    NotFound,
    NotOwned,
    /// (field, message)
    Invalid(&'static str, &'static str),
}

#[derive(Debug, Clone)]
pub struct CreatePatient {
    pub patient_id: i64,
    pub root_user_id: i64,
    pub profile: PatientProfile,
    pub now: DateTime<Utc>,
}

fn check_birthdate(raw: &str) -> Result<(), PatientError> {
    let ok = raw.len() == 8
        && raw.bytes().all(|b| b.is_ascii_digit())
        && chrono::NaiveDate::parse_from_str(raw, "%Y%m%d").is_ok();
    if ok {
        Ok(())
    } else {
        Err(PatientError::Invalid(
            "birthdate",
            "birthdate must be yyyymmdd",
        ))
    }
}

fn check_gender(raw: &str) -> Result<(), PatientError> {
    if matches!(raw, "M" | "F" | "N" | "P") {
        Ok(())
    } else {
        Err(PatientError::Invalid(
            "gender",
            "gender must be one of M, F, N, P",
        ))
    }
}

pub fn decide_create(
    state: &Patient,
    cmd: CreatePatient,
) -> Result<Vec<PatientEvent>, PatientError> {
    if state.id.is_some() {
        return Err(PatientError::AlreadyExists);
    }
    check_birthdate(&cmd.profile.birthdate)?;
    check_gender(&cmd.profile.gender)?;
    Ok(vec![PatientEvent::PatientCreated {
        patient_id: cmd.patient_id,
        root_user_id: cmd.root_user_id,
        profile: cmd.profile,
        created_at: cmd.now,
    }])
}

/// Existence first, then ownership: another account's patient answers `NotOwned`.
pub fn check_owner(state: &Patient, caller: i64) -> Result<i64, PatientError> {
    let id = state
        .id
        .filter(|_| !state.deleted)
        .ok_or(PatientError::NotFound)?;
    if state.root_user_id != caller {
        return Err(PatientError::NotOwned);
    }
    Ok(id)
}

pub fn decide_update(
    state: &Patient,
    caller: i64,
    changes: PatientChanges,
    now: DateTime<Utc>,
) -> Result<Vec<PatientEvent>, PatientError> {
    let patient_id = check_owner(state, caller)?;
    if let Some(b) = &changes.birthdate {
        check_birthdate(b)?;
    }
    if let Some(g) = &changes.gender {
        check_gender(g)?;
    }
    if changes == PatientChanges::default() {
        return Ok(vec![]);
    }
    Ok(vec![PatientEvent::PatientUpdated {
        patient_id,
        changes,
        updated_at: now,
    }])
}

/// Removes the patient; its device is released by the pairing decision staged beside it.
pub fn decide_delete(
    state: &Patient,
    caller: i64,
    now: DateTime<Utc>,
) -> Result<Vec<PatientEvent>, PatientError> {
    let patient_id = check_owner(state, caller)?;
    Ok(vec![PatientEvent::PatientDeleted {
        patient_id,
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

    fn create_cmd() -> CreatePatient {
        CreatePatient {
            patient_id: 5,
            root_user_id: 1,
            profile: PatientProfile {
                first_name: "test".into(),
                last_name: "".into(),
                birthdate: "19970101".into(),
                gender: "F".into(),
            },
            now: now(),
        }
    }

    fn created() -> Patient {
        Patient::fold(&decide_create(&Patient::default(), create_cmd()).unwrap())
    }

    #[test]
    fn given_nothing_when_creating_then_patient_created() {
        assert_json_snapshot!(decide_create(&Patient::default(), create_cmd()).unwrap());
    }

    #[test]
    fn given_created_when_creating_again_then_already_exists() {
        assert_eq!(
            decide_create(&created(), create_cmd()),
            Err(PatientError::AlreadyExists)
        );
    }

    #[test]
    fn given_nothing_when_creating_with_bad_profile_then_invalid() {
        let mut cmd = create_cmd();
        cmd.profile.gender = "X".into();
        assert!(matches!(
            decide_create(&Patient::default(), cmd),
            Err(PatientError::Invalid("gender", _))
        ));
        let mut cmd = create_cmd();
        cmd.profile.birthdate = "1997-01-01".into();
        assert!(matches!(
            decide_create(&Patient::default(), cmd),
            Err(PatientError::Invalid("birthdate", _))
        ));
    }

    #[test]
    fn given_created_when_owner_updates_then_updated() {
        let changes = PatientChanges {
            first_name: Some("tester".into()),
            gender: Some("P".into()),
            ..Default::default()
        };
        assert_json_snapshot!(decide_update(&created(), 1, changes, now()).unwrap());
        assert_eq!(
            decide_update(&created(), 1, PatientChanges::default(), now()),
            Ok(vec![])
        );
    }

    #[test]
    fn given_created_when_another_account_updates_or_deletes_then_not_owned() {
        assert_eq!(
            decide_update(&created(), 2, PatientChanges::default(), now()),
            Err(PatientError::NotOwned)
        );
        assert_eq!(
            decide_delete(&created(), 2, now()),
            Err(PatientError::NotOwned)
        );
    }

    #[test]
    fn given_missing_or_deleted_when_deleting_then_not_found() {
        assert_eq!(
            decide_delete(&Patient::default(), 1, now()),
            Err(PatientError::NotFound)
        );
        let mut deleted = created();
        deleted.evolve(&decide_delete(&created(), 1, now()).unwrap()[0]);
        assert_eq!(
            decide_delete(&deleted, 1, now()),
            Err(PatientError::NotFound)
        );
        assert_json_snapshot!(decide_delete(&created(), 1, now()).unwrap());
    }
}
