//! Therapy commands: each loads the aggregates it touches in one UnitOfWork, runs the pure
//! decisions and commits all streams together, retried when another writer won the race.

use super::pairing::{self, PairingError};
use super::patients::{self, CreatePatient, Patient, PatientError};
use super::treatment::{self, Treatments};
use crate::devices::domain::{mac_matches, normalize_serial, Device};
use crate::devices::views::{self, DeviceRow};
use crate::es::{next_id, Aggregate, CommandError, EventStore, UnitOfWork};
use chrono::Utc;
use fleetstream_events::store::ExpectedVersion;
use fleetstream_events::{
    DeviceEvent, DomainEvent, EventMetadata, MovementSample, PatientChanges, PatientEvent,
    PatientProfile, TreatmentEvent, TreatmentRecord,
};
use std::collections::HashMap;

/// Every therapy failure the seeds name, plus infrastructure failures.
#[derive(Debug)]
pub enum TherapyError {
    NotAuthorizedUser,
    NotFoundUser,
    RealUserNotFound,
    NotFoundDevice,
    AlreadyConnected,
    NotConnected,
    SerialCodeInvalid,
    RealUserDeleteFailed,
    Invalid(&'static str, &'static str),
    Conflict,
    /// An event over the log's size bound; nothing was written.
    TooLarge(String),
    Internal(String),
}

impl<E: std::fmt::Debug> From<CommandError<E>> for TherapyError {
    fn from(err: CommandError<E>) -> Self {
        match err {
            CommandError::Conflict(_) => TherapyError::Conflict,
            CommandError::TooLarge(e) => TherapyError::TooLarge(e),
            e => TherapyError::Internal(format!("{e:?}")),
        }
    }
}

impl From<sqlx::Error> for TherapyError {
    fn from(err: sqlx::Error) -> Self {
        TherapyError::Internal(err.to_string())
    }
}

impl From<fleetstream_events::store::LoadError> for TherapyError {
    fn from(err: fleetstream_events::store::LoadError) -> Self {
        TherapyError::Internal(format!("{err:?}"))
    }
}

impl From<PairingError> for TherapyError {
    fn from(err: PairingError) -> Self {
        match err {
            PairingError::DeviceNotFound => TherapyError::NotFoundDevice,
            PairingError::PatientNotFound => TherapyError::NotAuthorizedUser,
            PairingError::AlreadyConnected => TherapyError::AlreadyConnected,
            PairingError::NotConnected => TherapyError::NotConnected,
        }
    }
}

/// Re-runs `$body` (an async block) when it lost a version race.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            match $body.await {
                Err(TherapyError::Conflict) if attempt <= crate::es::MAX_CONFLICT_RETRIES => {
                    continue
                }
                other => break other,
            }
        }
    }};
}

async fn load_patient(uow: &mut UnitOfWork, id: i64) -> Result<(Patient, i64), TherapyError> {
    Ok(uow.load::<Patient>(&PatientEvent::stream_id(id)).await?)
}

async fn load_device(uow: &mut UnitOfWork, id: i64) -> Result<(Device, i64), TherapyError> {
    Ok(uow.load::<Device>(&DeviceEvent::stream_id(id)).await?)
}

/// The caller's own live patient, else 401 `Not authorized user` (seed 000 rule).
async fn owned_patient(
    uow: &mut UnitOfWork,
    caller: i64,
    id: i64,
) -> Result<(Patient, i64), TherapyError> {
    let (patient, version) = load_patient(uow, id).await?;
    if !patient.is_owned_by(caller) {
        return Err(TherapyError::NotAuthorizedUser);
    }
    Ok((patient, version))
}

/// Finds a device by serial code and the MAC rule (and `unique_id` when sent).
async fn find_by_serial(
    uow: &mut UnitOfWork,
    serial_code: &str,
    mac_id: &str,
    unique_id: Option<&str>,
) -> Result<i64, TherapyError> {
    let serial = normalize_serial(serial_code).map_err(|_| TherapyError::SerialCodeInvalid)?;
    let rows = views::by_serial(uow.conn(), &serial).await?;
    rows.into_iter()
        .find(|d| {
            d.mac_id.as_deref().is_some_and(|m| mac_matches(m, mac_id))
                && unique_id.is_none_or(|u| u == d.unique_id)
        })
        .map(|d| d.id)
        .ok_or(TherapyError::NotFoundDevice)
}

fn stage_pairing(
    uow: &mut UnitOfWork,
    device_id: i64,
    device_version: i64,
    patient_id: i64,
    patient_version: i64,
    (device_events, patient_events): pairing::PairingEvents,
) {
    uow.stage(
        &DeviceEvent::stream_id(device_id),
        ExpectedVersion::from_loaded(device_version),
        &device_events,
    );
    uow.stage(
        &PatientEvent::stream_id(patient_id),
        ExpectedVersion::from_loaded(patient_version),
        &patient_events,
    );
}

pub struct CreateRealUser {
    pub profile: PatientProfile,
    pub serial_code: String,
    pub mac_id: String,
    pub unique_id: Option<String>,
}

/// CreatePatient + ConnectDevice in one UnitOfWork: a failed pairing leaves no patient.
pub async fn create_real_user(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    cmd: &CreateRealUser,
) -> Result<(i64, DeviceRow), TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let device_id = find_by_serial(
            &mut uow,
            &cmd.serial_code,
            &cmd.mac_id,
            cmd.unique_id.as_deref(),
        )
        .await?;
        let (device, device_version) = load_device(&mut uow, device_id).await?;
        let patient_id = next_id(uow.conn(), "patient_id_seq").await?;
        let now = Utc::now();
        let created = patients::decide_create(
            &Patient::default(),
            CreatePatient {
                patient_id,
                root_user_id: caller,
                profile: cmd.profile.clone(),
                now,
            },
        )
        .map_err(|e| match e {
            PatientError::Invalid(field, msg) => TherapyError::Invalid(field, msg),
            _ => TherapyError::Conflict,
        })?;
        let patient = Patient::fold(&created);
        let (device_events, mut patient_events) = pairing::decide_connect(&device, &patient, now)?;
        let mut all = created;
        all.append(&mut patient_events);
        stage_pairing(
            &mut uow,
            device_id,
            device_version,
            patient_id,
            0,
            (device_events, all),
        );
        uow.commit::<()>().await?;
        let row = device_row(store, device_id).await?;
        Ok((patient_id, row))
    })
}

pub async fn device_row(store: &EventStore, device_id: i64) -> Result<DeviceRow, TherapyError> {
    let mut conn = store.pool.acquire().await?;
    views::by_id(&mut conn, device_id)
        .await?
        .ok_or(TherapyError::NotFoundDevice)
}

pub async fn set_my_device(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    real_user_id: i64,
    serial_code: &str,
    mac_id: &str,
) -> Result<(), TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let (patient, patient_version) = owned_patient(&mut uow, caller, real_user_id).await?;
        let device_id = find_by_serial(&mut uow, serial_code, mac_id, None).await?;
        let (device, device_version) = load_device(&mut uow, device_id).await?;
        let events = pairing::decide_connect(&device, &patient, Utc::now())?;
        stage_pairing(
            &mut uow,
            device_id,
            device_version,
            real_user_id,
            patient_version,
            events,
        );
        uow.commit::<()>().await?;
        Ok(())
    })
}

pub async fn un_connect(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    real_user_id: i64,
    unique_id: &str,
) -> Result<(), TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let (patient, patient_version) = owned_patient(&mut uow, caller, real_user_id).await?;
        let device_id = views::by_unique_id(uow.conn(), unique_id)
            .await?
            .ok_or(TherapyError::NotFoundDevice)?
            .id;
        let (device, device_version) = load_device(&mut uow, device_id).await?;
        let events = pairing::decide_disconnect(&device, &patient, Utc::now())?;
        stage_pairing(
            &mut uow,
            device_id,
            device_version,
            real_user_id,
            patient_version,
            events,
        );
        uow.commit::<()>().await?;
        Ok(())
    })
}

pub async fn update_alias(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    real_user_id: i64,
    device_id: i64,
    alias: &str,
) -> Result<DeviceRow, TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let (patient, _) = owned_patient(&mut uow, caller, real_user_id).await?;
        let (device, device_version) = load_device(&mut uow, device_id).await?;
        let events = pairing::decide_rename(&device, &patient, alias.to_owned(), Utc::now())?;
        uow.stage(
            &DeviceEvent::stream_id(device_id),
            ExpectedVersion::from_loaded(device_version),
            &events,
        );
        uow.commit::<()>().await?;
        device_row(store, device_id).await
    })
}

/// Stages the patient's removal and the release of its device into `uow`.
async fn stage_patient_removal(
    uow: &mut UnitOfWork,
    patient: &Patient,
    patient_version: i64,
) -> Result<(), TherapyError> {
    let Some(patient_id) = patient.id else {
        return Ok(());
    };
    let now = Utc::now();
    let mut patient_events = Vec::new();
    if let Some(device_id) = patient.device_id {
        let (device, device_version) = load_device(uow, device_id).await?;
        // A deleted device has nothing left to release; the patient still goes.
        if device.is_live() && device.real_user_id == Some(patient_id) {
            let (device_events, mut released) = pairing::decide_disconnect(&device, patient, now)?;
            uow.stage(
                &DeviceEvent::stream_id(device_id),
                ExpectedVersion::from_loaded(device_version),
                &device_events,
            );
            patient_events.append(&mut released);
        }
    }
    let mut deleted = patients::decide_delete(patient, patient.root_user_id, now)
        .map_err(|_| TherapyError::RealUserNotFound)?;
    patient_events.append(&mut deleted);
    uow.stage(
        &PatientEvent::stream_id(patient_id),
        ExpectedVersion::from_loaded(patient_version),
        &patient_events,
    );
    // The patient's personal data goes with it (ADR 0009).
    uow.shred(&[PatientEvent::stream_id(patient_id)]).await?;
    Ok(())
}

/// DeletePatient + DisconnectDevice. `unique_id` must name the patient's device when it has one.
pub async fn delete_real_user(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    real_user_id: i64,
    unique_id: &str,
) -> Result<(), TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let (patient, patient_version) = load_patient(&mut uow, real_user_id).await?;
        patients::check_owner(&patient, caller).map_err(|e| match e {
            PatientError::NotOwned => TherapyError::NotAuthorizedUser,
            _ => TherapyError::RealUserNotFound,
        })?;
        if let Some(device_id) = patient.device_id {
            let (device, _) = load_device(&mut uow, device_id).await?;
            if device.unique_id != unique_id {
                return Err(TherapyError::RealUserDeleteFailed);
            }
        }
        stage_patient_removal(&mut uow, &patient, patient_version).await?;
        uow.commit::<()>().await?;
        Ok(())
    })
}

/// Account withdrawal cascade: stages removal of every patient of `account_id` and the
/// unpairing of their devices into the caller's UnitOfWork (committed with the withdrawal).
pub async fn withdraw_patients(uow: &mut UnitOfWork, account_id: i64) -> Result<(), TherapyError> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM patients WHERE root_user_id = $1 ORDER BY id")
            .bind(account_id)
            .fetch_all(uow.conn())
            .await?;
    for id in ids {
        let (patient, version) = load_patient(uow, id).await?;
        if patient.is_live() {
            stage_patient_removal(uow, &patient, version).await?;
        }
    }
    Ok(())
}

pub async fn update_patient(
    store: &EventStore,
    metadata: EventMetadata,
    caller: i64,
    real_user_id: i64,
    changes: PatientChanges,
) -> Result<(), TherapyError> {
    store
        .execute::<Patient, _>(real_user_id, metadata, |state| {
            patients::decide_update(state, caller, changes.clone(), Utc::now())
        })
        .await
        .map(|_| ())
        .map_err(|e| match e {
            CommandError::Domain(PatientError::NotOwned) => TherapyError::NotAuthorizedUser,
            CommandError::Domain(PatientError::Invalid(f, m)) => TherapyError::Invalid(f, m),
            CommandError::Domain(_) => TherapyError::RealUserNotFound,
            e => e.into(),
        })
}

/// One element of a devlog upload, as addressed by the app.
#[derive(Debug, Clone)]
pub struct DevlogEntry {
    pub device_id: i64,
    pub unique_id: Option<String>,
    pub record: TreatmentRecord,
}

/// Seed 000 checks, in CONTRACT §3 order, for one (patient, device) address.
async fn check_devlog_address(
    uow: &mut UnitOfWork,
    caller: i64,
    real_user_id: i64,
    device_id: i64,
    unique_id: Option<&str>,
) -> Result<(), TherapyError> {
    let (patient, _) = load_patient(uow, real_user_id).await?;
    if !patient.is_live() {
        return Err(TherapyError::NotFoundUser);
    }
    if patient.root_user_id != caller {
        return Err(TherapyError::NotAuthorizedUser);
    }
    let (device, _) = load_device(uow, device_id).await?;
    if !device.is_live() || unique_id.is_some_and(|u| u != device.unique_id) {
        return Err(TherapyError::NotFoundDevice);
    }
    if device.real_user_id != Some(real_user_id) {
        return Err(TherapyError::NotConnected);
    }
    Ok(())
}

/// Uploads treatment records (v1 array or v2 `log_arrays`) in one transaction. Returns true
/// when any record was a finished one (the reply differs).
pub async fn upload_devlog(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    entries: &[DevlogEntry],
) -> Result<bool, TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        let mut per_device: Vec<(i64, Vec<TreatmentRecord>)> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        for entry in entries {
            check_devlog_address(
                &mut uow,
                caller,
                entry.record.real_user_id,
                entry.device_id,
                entry.unique_id.as_deref(),
            )
            .await?;
            let slot = *index.entry(entry.device_id).or_insert_with(|| {
                per_device.push((entry.device_id, Vec::new()));
                per_device.len() - 1
            });
            per_device[slot].1.push(entry.record.clone());
        }
        let now = Utc::now();
        for (device_id, records) in per_device {
            let stream = TreatmentEvent::stream_id(device_id);
            let (state, version) = uow.load::<Treatments>(&stream).await?;
            let events = treatment::decide_upload(&state, device_id, records, now);
            uow.stage(&stream, ExpectedVersion::from_loaded(version), &events);
        }
        uow.commit::<()>().await?;
        Ok(entries.iter().any(|e| e.record.finish_flag.is_some()))
    })
}

pub async fn record_movement(
    store: &EventStore,
    metadata: &EventMetadata,
    caller: i64,
    real_user_id: i64,
    device_id: i64,
    samples: &[MovementSample],
) -> Result<(), TherapyError> {
    retrying!(async {
        let mut uow = store.begin(metadata.clone()).await?;
        check_devlog_address(&mut uow, caller, real_user_id, device_id, None).await?;
        let stream = TreatmentEvent::stream_id(device_id);
        let (_, version) = uow.load::<Treatments>(&stream).await?;
        let events =
            treatment::decide_movement(device_id, real_user_id, samples.to_vec(), Utc::now());
        uow.stage(&stream, ExpectedVersion::from_loaded(version), &events);
        uow.commit::<()>().await?;
        Ok(())
    })
}
