//! One module per aggregate; each holds that aggregate's event enum.

mod account;
mod device;
mod message;
mod patient;
mod recording;
mod treatment;

pub use account::{AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role};
pub use device::{present, DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec};
pub use message::MessageEvent;
pub use patient::{PatientChanges, PatientEvent, PatientProfile};
pub use recording::{
    RecordingEvent, SensorSample, SyncLogEntry, SyncLogEvent, MAX_SAMPLES_PER_EVENT,
};
pub use treatment::{MovementSample, TreatmentEvent, TreatmentRecord};
